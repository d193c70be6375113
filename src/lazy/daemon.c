/*
 * The lazy-pages daemon.
 *
 * For each restored process (and each child it forks) it keeps the set of
 * pages still missing as segments of current addresses [start, end) with the
 * offset to their dump-time addresses (delta), so that mremap can move them;
 * a segment is "pending" once a background request covers it. Dropped ranges
 * (munmap, madvise DONTNEED) leave the set: a later fault there gets a zero
 * page, never a fetch. The main thread's epoll loop serves the handover
 * socket, the userfaultfds and the urgent connection to the source: a fault
 * becomes an urgent one-page request, and its answer is installed with
 * UFFDIO_COPY (EEXIST and EAGAIN are not errors) into every process that
 * still misses those pages. With a source, a second thread owns the pull
 * connection: it commits, then asks for the rest in the background and
 * installs it, so that a fault never waits behind bulk data.
 *
 * Both threads change the segment sets and the requests under one mutex, and
 * install pages only while holding it (in chunks of INSTALL_CHUNK, so that a
 * fault waits for at most one chunk): an unmap or madvise event, read and
 * applied under the mutex, can then never be followed by a stale install.
 * When nothing is missing any more, the session is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/image.h"
#include "core/log.h"
#include "core/util.h"
#include "lazy/lazy.h"
#include "mem/kapi.h"
#include "mem/page_read.h"
#include "net/auth.h"
#include "net/wire.h"
#include "proc/proc.h"

#define MAX_PROCS 64
#define MAX_REQS 64
#define WIN_MIN (256UL << 10)
#define WIN_MAX (1UL << 20)
#define BULK_IN_FLIGHT 4
#define INSTALL_CHUNK (32UL << 10)
#define LOCK_SPIN_NS 300000
#define FAULT_QUIET_NS 200000
#define FAULT_PAUSE_MAX_NS 1000000

struct seg {
	uint64_t start, end;
	int64_t delta; /* dump address = current address + delta */
	bool pending;  /* a background request covers it */
};

struct lproc {
	int uffd;
	struct seg *s;
	size_t n, cap;
	uint64_t last_fault;
	bool gone;
	bool moved; /* an mremap moved segments: deltas are not all 0 */
};

struct req {
	bool used, urgent;
	uint32_t id;
	uint64_t dump_addr, nr;
	uint64_t t0;
};

struct daemon {
	const struct lazy_daemon_opts *o;
	uint32_t dump_pid;
	char snapshot[64];
	struct page_read pr;
	Mm *mm;
	int ep, ls, client;
	int conn[2]; /* [0] urgent, [1] pull; -1 in local mode */
	char peer[64];
	struct lproc p[MAX_PROCS];
	int np;
	struct req reqs[MAX_REQS];
	uint32_t next_id;
	int bulk_in_flight;
	uint64_t window;
	uint8_t *buf;   /* the pull thread's answers; with no source, pages read from the image */
	struct wire_reader urd; /* the urgent connection's answers */
	uint8_t *zeros; /* WIN_MAX zero bytes */
	pthread_mutex_t mu;
	atomic_int main_waits; /* the main thread wants mu: the pull thread lets it go first */
	_Atomic uint64_t last_fault_ns; /* when the main thread last met a fault */
	cpu_set_t cpus;        /* where the daemon may run */
	int fault_cpu;         /* the main thread's CPU, -1 if not pinned */
	pthread_t puller;
	bool pulling;   /* the pull thread was started */
	int pull_done;  /* eventfd: the pull thread ended (its result in pull_r, pull_err) */
	int pull_kick;  /* eventfd: the sets changed, for a pull thread with nothing in flight */
	bool pull_idle; /* it waits on pull_kick (under mu) */
	int pull_r;
	struct ferry_err pull_err;
	bool handed, running, committed;
	uint64_t t_running;
	int guard;         /* socket to the guardian */
	/* stats */
	uint64_t fault_pages, bg_pages, faults;
	uint64_t lat[4096];
	size_t nlat;
	uint64_t t_start;
};

/* ---- segment sets ---- */

static int seg_insert(struct lproc *p, size_t at, struct seg s)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct seg *ns = realloc(p->s, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		p->s = ns;
		p->cap = cap;
	}
	memmove(p->s + at + 1, p->s + at, (p->n - at) * sizeof(*p->s));
	p->s[at] = s;
	p->n++;
	return 0;
}

static size_t seg_lower(const struct lproc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->s[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Remove [start, end) (current addresses); removed pieces can be collected. */
static int seg_remove(struct lproc *p, uint64_t start, uint64_t end, struct seg *out, size_t *nout,
		      size_t max_out)
{
	size_t i = seg_lower(p, start);

	if (nout)
		*nout = 0;
	while (i < p->n && p->s[i].start < end) {
		struct seg *s = &p->s[i];
		uint64_t from = s->start > start ? s->start : start;
		uint64_t to = s->end < end ? s->end : end;
		if (out && *nout < max_out)
			out[(*nout)++] = (struct seg){from, to, s->delta, s->pending};
		if (s->start < from && s->end > to) { /* split in two */
			struct seg tail = {to, s->end, s->delta, s->pending};
			s->end = from;
			if (seg_insert(p, i + 1, tail) < 0)
				return -ENOMEM;
			return 0;
		}
		if (s->start < from) {
			s->end = from;
			i++;
		} else if (s->end > to) {
			s->start = to;
			i++;
		} else {
			memmove(s, s + 1, (p->n - i - 1) * sizeof(*s));
			p->n--;
		}
	}
	return 0;
}

static int seg_add(struct lproc *p, struct seg s)
{
	return seg_insert(p, seg_lower(p, s.start), s);
}

/* ---- talking to the source ---- */

static int send_get(struct daemon *d, bool urgent, uint64_t dump_addr, uint64_t nr,
		    struct ferry_err *err);

/*
 * UFFDIO_COPY [dst, dst+len). Returns the bytes not installed because the
 * process is changing its mappings (EAGAIN: its event must be read first;
 * those pages go back to the missing set), or a negative errno.
 */
static int64_t install(struct lproc *p, uint64_t dst, const uint8_t *src,
		       uint64_t len)
{
	while (len) {
		struct uffdio_copy cp = {.dst = dst, .src = (uintptr_t)src, .len = len};
		if (ioctl(p->uffd, UFFDIO_COPY, &cp) == 0)
			return 0;
		uint64_t done = cp.copy > 0 ? (uint64_t)cp.copy : 0;
		if (errno == EAGAIN) {
			if (!done)
				return len;
		} else if (errno == EEXIST) { /* already there (a fault raced the background) */
			done += PAGE_SIZE;
		} else if (errno == ESRCH || errno == ENOENT) {
			p->gone = true;
			return 0;
		} else {
			return -errno;
		}
		if (done >= len)
			return 0;
		dst += done;
		src += done;
		len -= done;
	}
	return 0;
}

/* Data for dump addresses [addr, addr+len): into every process still missing it. */
static int deliver(struct daemon *d, uint64_t addr, uint64_t len, const uint8_t *data,
		   struct ferry_err *err)
{
	for (int i = 0; i < d->np; i++) {
		struct lproc *p = &d->p[i];
		if (p->gone)
			continue;
		/* segments overlapping the dump range, possibly moved by mremap; before
		 * any mremap every delta is 0 and the search can start at addr */
		for (size_t k = p->moved ? 0 : seg_lower(p, addr); k < p->n; k++) {
			if (!p->moved && p->s[k].start >= addr + len)
				break;
			struct seg *s = &p->s[k];
			uint64_t ds = s->start + s->delta, de = s->end + s->delta;
			if (de <= addr || ds >= addr + len)
				continue;
			uint64_t from = ds > addr ? ds : addr, to = de < addr + len ? de : addr + len;
			int64_t delta = s->delta; /* s moves when the set changes */
			uint64_t cur = from - delta;
			if (seg_remove(p, cur, cur + (to - from), NULL, NULL, 0) < 0)
				return ferry_fail(err, ENOMEM, "page segments");
			int64_t left = install(p, cur, data + (from - addr), to - from);
			if (left < 0)
				return ferry_fail(err, (int)-left, "install pages at %#lx",
						  (unsigned long)cur);
			if (left > 0) {
				/* the mappings are changing: read that event first, fetch these again */
				uint64_t back = cur + (to - from) - left;
				if (seg_add(p, (struct seg){back, back + left, delta, false}) < 0)
					return ferry_fail(err, ENOMEM, "page segments");
				struct uffdio_range w = {.start = back, .len = left};
				ioctl(p->uffd, UFFDIO_WAKE, &w);
				break;
			}
			/* the set changed: look again */
			k = p->moved ? (size_t)-1 : seg_lower(p, addr) - 1;
		}
	}
	return 0;
}

/* Pages the source has no data for read as zeros. */
static int deliver_zeros(struct daemon *d, uint64_t addr, uint64_t nr, struct ferry_err *err)
{
	uint64_t len = nr * PAGE_SIZE;
	int r = 0;

	for (uint64_t off = 0; r == 0 && off < len; off += WIN_MAX)
		r = deliver(d, addr + off, len - off < WIN_MAX ? len - off : WIN_MAX, d->zeros, err);
	return r;
}

static struct req *find_req(struct daemon *d, uint32_t id)
{
	for (int i = 0; i < MAX_REQS; i++)
		if (d->reqs[i].used && d->reqs[i].id == id)
			return &d->reqs[i];
	return NULL;
}

static void finish_req(struct daemon *d, struct req *q, uint64_t pages)
{
	if (q->urgent) {
		d->fault_pages += pages;
		if (d->nlat < ARRAY_SIZE(d->lat))
			d->lat[d->nlat++] = mono_ns() - q->t0;
	} else {
		d->bg_pages += pages;
		d->bulk_in_flight--;
	}
	q->used = false;
}

/* Local mode: read the image at once. */
static int get_local(struct daemon *d, struct req *q, struct ferry_err *err)
{
	uint64_t len = q->nr * PAGE_SIZE;
	int r = page_read_pages(&d->pr, q->dump_addr, len, d->buf, err);

	if (r == 0)
		r = deliver(d, q->dump_addr, len, d->buf, err);
	finish_req(d, q, q->nr);
	return r;
}

static int send_get(struct daemon *d, bool urgent, uint64_t dump_addr, uint64_t nr,
		    struct ferry_err *err)
{
	struct req *q = NULL;

	for (int i = 0; i < MAX_REQS && !q; i++)
		if (!d->reqs[i].used)
			q = &d->reqs[i];
	if (!q)
		return ferry_refuse(err, EAGAIN, "too many requests in flight");
	*q = (struct req){.used = true, .urgent = urgent, .id = ++d->next_id,
			  .dump_addr = dump_addr, .nr = nr, .t0 = mono_ns()};
	if (!urgent)
		d->bulk_in_flight++;
	if (d->conn[0] < 0)
		return get_local(d, q, err);
	struct wire_msg m = {.h = {.type = WT_GET, .flags = urgent ? WF_URGENT : 0, .id = q->id}};
	m.u.get.pid = d->dump_pid;
	m.u.get.vaddr = dump_addr;
	m.u.get.nr_pages = nr;
	return wire_send_msg(d->conn[urgent ? 0 : 1], &m, d->peer, err);
}

/*
 * The mutex, taken by the main thread (faults, events, urgent answers) or by
 * the pull thread. A mutex is not fair: the pull thread, taking it again right
 * after each chunk, could keep a fault waiting for many; so it steps aside
 * while the main thread waits.
 */
static void lock_main(struct daemon *d)
{
	atomic_fetch_add(&d->main_waits, 1);
	/* spin first: the pull thread holds it for one chunk at most, and being
	 * woken from its CPU would cost more than that */
	uint64_t until = mono_ns() + LOCK_SPIN_NS;
	while (pthread_mutex_trylock(&d->mu) != 0) {
		if (mono_ns() > until) {
			pthread_mutex_lock(&d->mu);
			break;
		}
		__builtin_ia32_pause();
	}
	atomic_fetch_sub(&d->main_waits, 1);
}

static void lock_pull(struct daemon *d)
{
	/* faults come in bursts: while one was seen in the last FAULT_QUIET_NS,
	 * the background steps aside (for FAULT_PAUSE_MAX_NS at most, so that it
	 * still moves during a long burst) */
	uint64_t now = mono_ns(), until = now + FAULT_PAUSE_MAX_NS;
	while (now < until && now - atomic_load(&d->last_fault_ns) < FAULT_QUIET_NS) {
		struct timespec ts = {0, FAULT_QUIET_NS / 4};
		nanosleep(&ts, NULL);
		now = mono_ns();
	}
	while (atomic_load(&d->main_waits))
		sched_yield();
	pthread_mutex_lock(&d->mu);
}

static void lock_any(struct daemon *d, bool main_thread)
{
	if (main_thread)
		lock_main(d);
	else
		lock_pull(d);
}

/*
 * The sets changed (mutex held): a pull thread waiting with nothing in flight
 * looks again. Only then: no system call on the fault path otherwise.
 */
static void kick_if_idle(struct daemon *d)
{
	uint64_t one = 1;

	if (d->pull_idle && write(d->pull_kick, &one, sizeof(one)) < 0) {
		/* already kicked */
	}
}

/* Install data that arrived, a chunk at a time under the mutex. */
static int deliver_locked(struct daemon *d, bool main_thread, uint64_t addr, uint64_t len,
			  const uint8_t *data, struct ferry_err *err)
{
	int r = 0;

	for (uint64_t off = 0; r == 0 && off < len; off += INSTALL_CHUNK) {
		uint64_t n = len - off < INSTALL_CHUNK ? len - off : INSTALL_CHUNK;
		lock_any(d, main_thread);
		r = deliver(d, addr + off, n, data + off, err);
		pthread_mutex_unlock(&d->mu);
	}
	return r;
}

/* The last part of an answer arrived (mutex held). */
static void answer_done(struct daemon *d, struct req *q, uint64_t got)
{
	if (!q->urgent && got < q->nr) {
		/* fewer pages than asked: the rest goes back to the missing set */
		uint64_t from = q->dump_addr + got * PAGE_SIZE;
		uint64_t to = q->dump_addr + q->nr * PAGE_SIZE;
		for (int i = 0; i < d->np; i++)
			for (size_t k = 0; k < d->p[i].n; k++) {
				struct seg *s = &d->p[i].s[k];
				if (s->start + s->delta < to && s->end + s->delta > from)
					s->pending = false;
			}
	}
	finish_req(d, q, got);
}

/*
 * One answer from the source on fd: the urgent connection's (the main
 * thread's) through its reader, the pull connection's into buf; takes the
 * mutex itself. Urgent answers (one page, or a few) are installed in one go
 * under one taking of the mutex; bulk ones a chunk at a time.
 */
static int recv_answer(struct daemon *d, int fd, struct ferry_err *err)
{
	bool main_thread = fd != d->conn[1];
	const uint8_t *data = d->buf;
	struct wire_msg m;
	int r;

	if (main_thread) {
		/* a fault's answer and its page in one receive (data: in the reader) */
		r = wire_reader_next(&d->urd, fd, &m, &data, 30000, false, d->peer, err);
	} else {
		r = wire_recv_msg(fd, &m, 30000, false, d->peer, err);
		uint64_t len = r == 0 ? wire_data_len(&m) : 0;
		if (len > WIRE_MAX_DATA_PAGES * (uint64_t)PAGE_SIZE)
			return ferry_refuse(err, EPROTO, "%s: answer too large", d->peer);
		if (len)
			r = wire_recv(fd, d->buf, len, 30000, false, d->peer, err);
	}
	if (r < 0)
		return r;
	switch (m.h.type) {
	case WT_PAGES: {
		uint64_t len = wire_data_len(&m);
		if (len && !main_thread)
			r = deliver_locked(d, false, m.u.pages.vaddr, len, data, err);
		if (r < 0)
			return r;
		lock_any(d, main_thread);
		struct req *q = find_req(d, m.h.id);
		if (len && main_thread) {
			r = deliver(d, m.u.pages.vaddr, len, data, err);
		} else if (!len) {
			/* zero kind: nothing to fetch, the pages read as zeros; never
			 * more than was asked: a hostile count must not spin here */
			uint64_t asked = q ? q->nr : 0;
			uint64_t nr = m.u.pages.nr_pages < asked ? m.u.pages.nr_pages : asked;
			r = deliver_zeros(d, m.u.pages.vaddr, nr, err);
		}
		if (r == 0 && q && (m.h.flags & WF_LAST))
			answer_done(d, q, m.u.pages.nr_pages);
		if (main_thread)
			kick_if_idle(d);
		pthread_mutex_unlock(&d->mu);
		return r;
	}
	case WT_NOT_FOUND: {
		lock_any(d, main_thread);
		struct req *q = find_req(d, m.h.id);
		if (q) {
			r = deliver_zeros(d, q->dump_addr, q->nr, err);
			finish_req(d, q, 0);
		}
		pthread_mutex_unlock(&d->mu);
		return r;
	}
	case WT_OK:
		if (!d->committed)
			pr_info("lazy-pages: the source acknowledged the commit");
		d->committed = true;
		return 0;
	case WT_ERROR:
		return ferry_refuse(err, EPROTO, "the source %s: %s", d->peer, m.u.error.text);
	default:
		return ferry_refuse(err, EPROTO, "the source %s sent %s", d->peer,
				    wire_type_name(m.h.type));
	}
}

/* ---- faults and events ---- */

static int on_fault(struct daemon *d, struct lproc *p, uint64_t addr, struct ferry_err *err)
{
	uint64_t page = PAGE_ALIGN_DOWN(addr);
	size_t i = seg_lower(p, page);

	d->faults++;
	p->last_fault = page;
	atomic_store(&d->last_fault_ns, mono_ns());
	/* the background moves next to the fault, with a smaller window: halved,
	 * not reset, as faults come often and small requests would slow it */
	if (d->window > WIN_MIN)
		d->window /= 2;
	if (i < p->n && p->s[i].start <= page) {
		for (int k = 0; k < MAX_REQS; k++) /* already asked for urgently */
			if (d->reqs[k].used && d->reqs[k].urgent &&
			    d->reqs[k].dump_addr == page + p->s[i].delta)
				return 0;
		return send_get(d, true, page + p->s[i].delta, 1, err);
	}
	/* not missing: dropped (madvise/munmap), never saved, or already installed */
	struct uffdio_zeropage z = {.range = {.start = page, .len = PAGE_SIZE}};
	if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) < 0) {
		struct uffdio_range w = {.start = page, .len = PAGE_SIZE};
		if (errno == EEXIST || errno == EAGAIN) /* installed, or retry after the event */
			ioctl(p->uffd, UFFDIO_WAKE, &w);
		else if (errno == ESRCH || errno == ENOENT)
			p->gone = true;
	}
	return 0;
}

static int add_proc(struct daemon *d, int uffd, struct ferry_err *err);

static int on_event(struct daemon *d, struct lproc *p, const struct uffd_msg *m,
		    struct ferry_err *err)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		return on_fault(d, p, m->arg.pagefault.address, err);
	case UFFD_EVENT_FORK: {
		int r = add_proc(d, m->arg.fork.ufd, err);
		if (r < 0)
			return r;
		struct lproc *c = &d->p[d->np - 1];
		c->moved = p->moved;
		for (size_t i = 0; i < p->n; i++)
			if (seg_add(c, (struct seg){p->s[i].start, p->s[i].end, p->s[i].delta, false}) < 0)
				return ferry_fail(err, ENOMEM, "page segments");
		pr_info("lazy-pages: followed a fork (%zu segments)", c->n);
		return 0;
	}
	case UFFD_EVENT_REMAP: {
		uint64_t from = m->arg.remap.from, to = m->arg.remap.to, len = m->arg.remap.len;
		struct seg moved[256];
		size_t n;
		if (seg_remove(p, from, from + len, moved, &n, ARRAY_SIZE(moved)) < 0)
			return ferry_fail(err, ENOMEM, "page segments");
		for (size_t i = 0; i < n; i++) {
			struct seg s = moved[i];
			s.start = s.start - from + to;
			s.end = s.end - from + to;
			s.delta -= (int64_t)(to - from);
			s.pending = false;
			p->moved = true;
			if (seg_add(p, s) < 0)
				return ferry_fail(err, ENOMEM, "page segments");
		}
		return 0;
	}
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		/* gone for good: a later fault there gets a zero page */
		if (seg_remove(p, m->arg.remove.start, m->arg.remove.end, NULL, NULL, 0) < 0)
			return ferry_fail(err, ENOMEM, "page segments");
		return 0;
	}
	return 0;
}

static int read_uffd(struct daemon *d, struct lproc *p, struct ferry_err *err)
{
	struct uffd_msg msgs[16];

	for (;;) {
		ssize_t n = read(p->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return ferry_fail_errno(err, "read userfaultfd");
		}
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n / sizeof(msgs[0]); i++) {
			int r = on_event(d, p, &msgs[i], err);
			if (r < 0)
				return r;
		}
		if ((size_t)n < sizeof(msgs))
			return 0; /* drained: epoll says when more come (saves a read per fault) */
	}
}

/* Background: the pages nearest to the last fault, in a window that grows. */
static bool prefetch_due(const struct daemon *d)
{
	return d->running &&
	       mono_ns() - d->t_running >= (uint64_t)d->o->prefetch_after_ms * 1000000ULL;
}

static int prefetch(struct daemon *d, struct ferry_err *err)
{
	while (prefetch_due(d) && d->bulk_in_flight < BULK_IN_FLIGHT) {
		struct lproc *p = NULL;
		for (int i = 0; i < d->np && !p; i++)
			for (size_t k = 0; k < d->p[i].n && !p; k++)
				if (!d->p[i].gone && !d->p[i].s[k].pending)
					p = &d->p[i];
		if (!p)
			return 0;
		size_t k = seg_lower(p, p->last_fault);
		size_t tries = 0;
		while (tries++ < p->n && p->s[k % p->n].pending)
			k++;
		struct seg *s = &p->s[k % p->n];
		if (s->pending)
			return 0;
		uint64_t from = s->start > p->last_fault ? s->start : PAGE_ALIGN_DOWN(p->last_fault);
		if (from < s->start || from >= s->end)
			from = s->start;
		uint64_t to = from + d->window < s->end ? from + d->window : s->end;
		int64_t delta = s->delta;
		/* mark [from, to) pending */
		struct seg mid = {from, to, delta, true};
		if (seg_remove(p, from, to, NULL, NULL, 0) < 0 || seg_add(p, mid) < 0)
			return ferry_fail(err, ENOMEM, "page segments");
		p->last_fault = to;
		if (d->window < WIN_MAX)
			d->window *= 2;
		int r = send_get(d, false, from + delta, (to - from) / PAGE_SIZE, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool all_done(const struct daemon *d)
{
	for (int i = 0; i < d->np; i++)
		if (!d->p[i].gone && d->p[i].n)
			return false;
	return d->np > 0;
}

/* ---- processes, handover, guardian ---- */

static int add_proc(struct daemon *d, int uffd, struct ferry_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (d->np == MAX_PROCS)
		return ferry_refuse(err, EMFILE, "too many processes under lazy restore");
	struct lproc *p = &d->p[d->np];
	memset(p, 0, sizeof(*p));
	p->uffd = uffd;
	ev.data.u64 = 100 + d->np;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, uffd, &ev) < 0)
		return ferry_fail_errno(err, "epoll");
	d->np++;
	if (d->guard >= 0) /* the guardian keeps a copy of every userfaultfd */
		send_fd(d->guard, "U", 1, uffd);
	return 0;
}

/* The lazy segments of the first process: runs with data in private anonymous mappings. */
static int initial_segments(struct daemon *d, struct lproc *p, struct ferry_err *err)
{
	const Pagemap *pm = d->pr.layers[0].pm;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		if (!(r->flags & (FERRY_PR_PRESENT | FERRY_PR_IN_PARENT | FERRY_PR_LAZY)))
			continue;
		for (size_t k = 0; k < d->mm->n_vmas; k++) {
			const Vma *v = d->mm->vmas[k];
			uint64_t rend = r->vaddr + r->nr_pages * PAGE_SIZE;
			if (!vma_is_private_anon(v) || v->end <= r->vaddr || v->start >= rend)
				continue;
			uint64_t from = v->start > r->vaddr ? v->start : r->vaddr;
			uint64_t to = v->end < rend ? v->end : rend;
			if (seg_add(p, (struct seg){from, to, 0, false}) < 0)
				return ferry_fail(err, ENOMEM, "page segments");
		}
	}
	return 0;
}

/*
 * Kill the restored processes (and their children) if the daemon dies first.
 * The guardian starts with the daemon; it learns the pid of the restored
 * process ("P pid") and gets a copy of every userfaultfd ("U").
 */
static void guardian(int sock)
{
	pid_t pid = 0;
	char b[32];

	prctl(PR_SET_NAME, "ferry-guardian", 0, 0, 0);
	for (;;) {
		int fd; /* a userfaultfd copy, kept open until the guardian exits */
		ssize_t r = recv_fd(sock, b, sizeof(b) - 1, &fd);
		if (r >= 1 && b[0] == 'D')
			_exit(0); /* every page arrived */
		if (r >= 1 && b[0] == 'U')
			continue;
		if (r >= 1 && b[0] == 'P') {
			b[r] = '\0';
			pid = atoi(b + 1);
			continue;
		}
		break; /* the daemon is gone */
	}
	if (pid <= 0)
		_exit(0); /* no process was handed over: nothing runs on missing memory */
	pr_err("lazy-pages: the daemon ended before all pages of pid %d arrived: killing it "
	       "rather than let it run on missing memory", pid);
	fprintf(stderr, "ferry lazy-pages: the daemon ended before all pages of pid %d arrived: "
			"killing it rather than let it run on missing memory\n",
		pid);
	pid_t *kids = NULL;
	size_t nkids = 0;
	struct ferry_err e;
	if (proc_parse_children(pid, &kids, &nkids, &e) == 0) {
		for (size_t i = 0; i < nkids; i++)
			kill(kids[i], SIGKILL);
		free(kids);
	}
	kill(pid, SIGKILL);
	_exit(1);
}

static int start_guardian(struct daemon *d, struct ferry_err *err)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return ferry_fail_errno(err, "socketpair");
	/* the daemon's only child: reaped by the kernel when it ends (SIG_IGN) */
	signal(SIGCHLD, SIG_IGN);
	pid_t g = fork();
	if (g < 0)
		return ferry_fail_errno(err, "fork the guardian");
	if (g == 0) {
		/* it keeps nothing of the daemon's but its log and this socket */
		int keep[] = {0, 1, 2, sv[1], log_fileno()};
		signal(SIGCHLD, SIG_DFL);
		close_fds_except(keep, ARRAY_SIZE(keep));
		guardian(sv[1]);
	}
	close(sv[1]);
	d->guard = sv[0];
	return 0;
}

static int recv_handover(struct daemon *d, int c, struct ferry_err *err)
{
	char buf[128];
	unsigned long sp;
	int pid, uffd, r, cpu = -1;

	ssize_t n = recv_fd(c, buf, sizeof(buf) - 1, &uffd);
	if (n <= 0)
		return ferry_refuse(err, EPROTO, "the restore hung up before its handover");
	buf[n] = '\0';
	if (uffd < 0 || sscanf(buf, "H %d %lx %d", &pid, &sp, &cpu) < 2)
		return ferry_refuse(err, EPROTO, "bad handover from the restore: '%s'", buf);
	fcntl(uffd, F_SETFL, O_NONBLOCK);
	n = snprintf(buf, sizeof(buf), "P%d", pid);
	if (send(d->guard, buf, n, MSG_NOSIGNAL) != n)
		return ferry_fail_errno(err, "tell the guardian of pid %d", pid);
	d->handed = true;
	/* the fault path on the CPU the process was restored on: a wakeup across
	 * CPUs costs far more than one on the same CPU, and the process follows
	 * the thread that wakes it; the pull thread gets the other CPUs */
	sched_getaffinity(0, sizeof(d->cpus), &d->cpus);
	if (cpu >= 0 && CPU_ISSET(cpu, &d->cpus) && CPU_COUNT(&d->cpus) > 1 && pin_to_cpu(cpu) >= 0)
		d->fault_cpu = cpu;
	pthread_mutex_lock(&d->mu);
	r = add_proc(d, uffd, err);
	if (r < 0) {
		pthread_mutex_unlock(&d->mu);
		close(uffd);
		return r;
	}
	struct lproc *p = &d->p[d->np - 1];
	r = initial_segments(d, p, err);
	/* the stack page first, before the process runs */
	size_t i = seg_lower(p, sp);
	bool fetch = r == 0 && i < p->n && p->s[i].start <= sp;
	p->last_fault = sp;
	if (fetch)
		r = send_get(d, true, sp + p->s[i].delta, 1, err);
	pthread_mutex_unlock(&d->mu);
	/* no other thread yet: the requests cannot change under us */
	while (r == 0 && fetch && d->conn[0] >= 0 && find_req(d, d->next_id))
		r = recv_answer(d, d->conn[0], err);
	if (r < 0)
		return r;
	pr_info("lazy-pages: pid %d handed over, %zu lazy segments", pid, p->n);
	return write_all(c, "OK\n", 3) < 0 ? ferry_fail_errno(err, "answer the restore") : 0;
}

/*
 * The pull thread: COMMIT, then the background transfer on the pull
 * connection until nothing is missing. Its result goes to pull_r/pull_err,
 * and pull_done wakes the main loop.
 */
static int pull(struct daemon *d, struct ferry_err *err)
{
	struct wire_msg m = {.h = {.type = WT_COMMIT}};
	int fd = d->conn[1];

	lock_pull(d);
	m.h.id = ++d->next_id;
	pthread_mutex_unlock(&d->mu);
	int r = wire_send_msg(fd, &m, d->peer, err);

	while (r == 0 && !d->committed) /* the source cannot resume from now on */
		r = recv_answer(d, fd, err);
	if (r == 0 && d->o->prefetch_after_ms > 0) {
		struct timespec ts = {d->o->prefetch_after_ms / 1000,
				      (d->o->prefetch_after_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	while (r == 0) {
		lock_pull(d);
		r = prefetch(d, err);
		bool done = all_done(d) && !d->bulk_in_flight, idle = !d->bulk_in_flight;
		d->pull_idle = idle && !done;
		pthread_mutex_unlock(&d->mu);
		if (r < 0 || done)
			break;
		if (idle) {
			/* the rest is on its way urgently: wait until that changes */
			struct pollfd p[2] = {{fd, POLLIN, 0}, {d->pull_kick, POLLIN, 0}};
			if (poll(p, 2, 1000) < 0 && errno != EINTR)
				return ferry_fail_errno(err, "poll");
			uint64_t v;
			if ((p[1].revents & POLLIN) && read(d->pull_kick, &v, sizeof(v)) < 0) {
				/* cleared already */
			}
			if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		r = recv_answer(d, fd, err);
	}
	return r;
}

static void *puller_main(void *arg)
{
	struct daemon *d = arg;
	uint64_t one = 1;

	d->pull_r = pull(d, &d->pull_err);
	if (write(d->pull_done, &one, sizeof(one)) < 0) {
		/* the main loop also sees the connection close */
	}
	return NULL;
}

static int start_puller(struct daemon *d, struct ferry_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 3};

	d->pull_done = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->pull_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->pull_done < 0 || d->pull_kick < 0 ||
	    epoll_ctl(d->ep, EPOLL_CTL_ADD, d->pull_done, &ev) < 0)
		return ferry_fail_errno(err, "eventfd");
	if (pthread_create(&d->puller, NULL, puller_main, d) != 0)
		return ferry_fail(err, EAGAIN, "start the pull thread");
	if (d->fault_cpu >= 0) /* anywhere: the background needs every CPU */
		pthread_setaffinity_np(d->puller, sizeof(d->cpus), &d->cpus);
	d->pulling = true;
	return 0;
}

static void stop_puller(struct daemon *d)
{
	if (!d->pulling)
		return;
	shutdown(d->conn[1], SHUT_RD);
	uint64_t one = 1;
	if (write(d->pull_kick, &one, sizeof(one)) < 0) {
		/* it will see the shutdown */
	}
	pthread_join(d->puller, NULL);
	d->pulling = false;
}

static int on_client(struct daemon *d, struct ferry_err *err)
{
	char buf[64];
	ssize_t n = read(d->client, buf, sizeof(buf) - 1);

	if (n <= 0) { /* the restore is done with us */
		epoll_ctl(d->ep, EPOLL_CTL_DEL, d->client, NULL);
		close(d->client);
		d->client = -1;
		if (!d->running)
			return ferry_refuse(err, EPIPE, "the restore failed before the process ran");
		return 0;
	}
	buf[n] = '\0';
	if (buf[0] != 'R')
		return ferry_refuse(err, EPROTO, "unexpected message from the restore");
	pthread_mutex_lock(&d->mu);
	d->running = true;
	d->t_running = mono_ns();
	pthread_mutex_unlock(&d->mu);
	pr_info("lazy-pages: the process runs, committing");
	if (d->conn[1] >= 0)
		return start_puller(d, err);
	d->committed = true;
	return 0;
}

static int watch_client(struct daemon *d, struct ferry_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 2};

	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->client, &ev) < 0)
		return ferry_fail_errno(err, "epoll");
	return 0;
}

static int connect_source(struct daemon *d, struct ferry_err *err)
{
	struct wire_key key;
	uint64_t agreed;
	int r;

	if (d->o->auth_key && (r = wire_key_load(d->o->auth_key, &key, err)) < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		/* the source may still be writing its images: it listens right after */
		for (int tries = 0; tries < 200; tries++) {
			r = wire_connect(d->o->address, d->o->port, WIRE_CONNECT_TIMEOUT_MS,
					 &d->conn[i], d->peer, sizeof(d->peer), err);
			if (r != -ECONNREFUSED)
				break;
			usleep(50000);
		}
		if (r == 0)
			r = wire_client_hello(d->conn[i], d->peer, i == 0 ? WROLE_URGENT : WROLE_PULL,
					      WFEAT_LAZY | WFEAT_URGENT |
						      (d->o->auth_key ? WFEAT_AUTH : 0),
					      d->o->auth_key ? &key : NULL, &agreed, err);
		if (r == 0) {
			/* name the dump: a source serving another one refuses */
			struct wire_msg m = {.h = {.type = WT_OPEN, .id = ++d->next_id}};
			m.u.open.pid = d->dump_pid;
			snprintf(m.u.open.snapshot_id, sizeof(m.u.open.snapshot_id), "%s", d->snapshot);
			snprintf(m.u.open.dir, sizeof(m.u.open.dir), "lazy");
			r = wire_send_msg(d->conn[i], &m, d->peer, err);
			if (r == 0)
				r = wire_recv_msg(d->conn[i], &m, 10000, false, d->peer, err);
			if (r == 0 && m.h.type == WT_ERROR)
				r = ferry_refuse(err, EINVAL, "the source %s: %s", d->peer,
						 m.u.error.text);
			else if (r == 0 && m.h.type != WT_OK)
				r = ferry_refuse(err, EPROTO, "the source %s answered %s", d->peer,
						 wire_type_name(m.h.type));
		}
		if (r < 0)
			break;
		if (i == 0) { /* the pull connection belongs to the pull thread */
			struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 10};
			epoll_ctl(d->ep, EPOLL_CTL_ADD, d->conn[i], &ev);
		}
	}
	if (d->o->auth_key)
		wire_key_wipe(&key);
	return r;
}

static int listen_handover(struct daemon *d, struct ferry_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lazy-pages.sock", d->o->dir) >=
	    sizeof(sa.sun_path))
		return ferry_refuse(err, ENAMETOOLONG, "%s: path too long for a socket", d->o->dir);
	unlink(sa.sun_path);
	d->ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->ls < 0 || bind(d->ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->ls, 1) < 0)
		return ferry_fail_errno(err, "listen on %s", sa.sun_path);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
	epoll_ctl(d->ep, EPOLL_CTL_ADD, d->ls, &ev);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(struct daemon *d)
{
	double total = (mono_ns() - d->t_start) / 1e6;

	qsort(d->lat, d->nlat, sizeof(d->lat[0]), cmp_u64);
	pr_info("lazy-pages: all pages arrived: %lu on faults (%lu faults), %lu in background, "
		"fault latency p50 %.1f us p99 %.1f us max %.1f us, %.1f ms in all",
		(unsigned long)d->fault_pages, (unsigned long)d->faults, (unsigned long)d->bg_pages,
		d->nlat ? d->lat[d->nlat / 2] / 1e3 : 0, d->nlat ? d->lat[d->nlat * 99 / 100] / 1e3 : 0,
		d->nlat ? d->lat[d->nlat - 1] / 1e3 : 0, total);
	char path[4200];
	snprintf(path, sizeof(path), "%s/lazy-stats.json", d->o->dir);
	FILE *f = fopen(path, "we");
	if (f) {
		fprintf(f,
			"{\"pages_on_fault\":%lu,\"faults\":%lu,\"pages_background\":%lu,"
			"\"fault_p50_us\":%.1f,\"fault_p99_us\":%.1f,\"fault_max_us\":%.1f,"
			"\"total_ms\":%.1f}\n",
			(unsigned long)d->fault_pages, (unsigned long)d->faults,
			(unsigned long)d->bg_pages, d->nlat ? d->lat[d->nlat / 2] / 1e3 : 0,
			d->nlat ? d->lat[d->nlat * 99 / 100] / 1e3 : 0,
			d->nlat ? d->lat[d->nlat - 1] / 1e3 : 0, total);
		fclose(f);
	}
}

static int load_images(struct daemon *d, struct ferry_err *err)
{
	_cleanup_close_ int fd = open(d->o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	Pstree *pst = NULL;
	Inventory *inv = NULL;
	char name[64];
	int r;

	if (fd < 0)
		return ferry_fail_errno(err, "open %s", d->o->dir);
	r = img_read(fd, "inventory.img", IMG_INVENTORY, (ProtobufCMessage **)&inv, err);
	if (r < 0)
		return r;
	snprintf(d->snapshot, sizeof(d->snapshot), "%s", inv->snapshot_id);
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	r = img_read(fd, "pstree.img", IMG_PSTREE, (ProtobufCMessage **)&pst, err);
	if (r < 0)
		return r;
	d->dump_pid = pst->n_entries ? pst->entries[0]->pid : 0;
	protobuf_c_message_free_unpacked(&pst->base, NULL);
	img_name(name, sizeof(name), "mm", d->dump_pid);
	r = img_read(fd, name, IMG_MM, (ProtobufCMessage **)&d->mm, err);
	if (r == 0)
		r = page_read_open_local(d->o->dir, d->dump_pid, &d->pr, err);
	return r;
}

/* The pull thread ended: its result becomes ours. */
static int join_puller(struct daemon *d, struct ferry_err *err)
{
	uint64_t v;

	if (read(d->pull_done, &v, sizeof(v)) < 0 && errno == EAGAIN)
		return 0; /* not yet */
	pthread_join(d->puller, NULL);
	d->pulling = false;
	if (d->pull_r < 0) {
		*err = d->pull_err;
		ferry_wrap(err, "lost the source before every page arrived");
	}
	return d->pull_r;
}

static int loop(struct daemon *d, struct ferry_err *err)
{
	struct epoll_event evs[32];
	int r = 0;

	while (r == 0) {
		lock_main(d);
		bool finished = d->running && all_done(d) && !d->bulk_in_flight;
		if (!finished && !d->pulling) /* no pull thread: the background is ours */
			r = prefetch(d, err);
		pthread_mutex_unlock(&d->mu);
		if (r < 0 || (finished && !d->pulling))
			break;
		int wait_ms = 1000;
		if (d->running && !prefetch_due(d)) {
			uint64_t due = d->t_running + (uint64_t)d->o->prefetch_after_ms * 1000000ULL;
			wait_ms = (int)((due - mono_ns()) / 1000000ULL) + 1;
			if (wait_ms > 1000)
				wait_ms = 1000;
		}
		int n = epoll_wait(d->ep, evs, ARRAY_SIZE(evs), wait_ms);
		if (n < 0 && errno != EINTR)
			return ferry_fail_errno(err, "epoll_wait");
		for (int i = 0; i < n && r == 0; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag >= 100) {
				lock_main(d);
				r = read_uffd(d, &d->p[tag - 100], err);
				kick_if_idle(d);
				pthread_mutex_unlock(&d->mu);
			} else if (tag == 10) {
				r = recv_answer(d, d->conn[0], err);
				/* more answers may have come in the same receive */
				while (r == 0 && wire_reader_ready(&d->urd))
					r = recv_answer(d, d->conn[0], err);
				if (r < 0)
					ferry_wrap(err, "lost the source before every page arrived");
			} else if (tag == 3) {
				r = join_puller(d, err);
			} else if (tag == 1 && d->client < 0) {
				d->client = accept4(d->ls, NULL, NULL, SOCK_CLOEXEC);
				if (d->client >= 0)
					r = watch_client(d, err);
			} else if (tag == 2 && !d->handed) {
				r = recv_handover(d, d->client, err);
			} else if (tag == 2) {
				r = on_client(d, err);
			}
		}
	}
	if (r < 0)
		stop_puller(d);
	return r;
}

int lazy_daemon(const struct lazy_daemon_opts *o, struct ferry_err *err)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return ferry_fail(err, ENOMEM, "lazy-pages daemon");
	d->o = o;
	d->ls = d->client = d->guard = -1;
	d->conn[0] = d->conn[1] = -1;
	d->window = WIN_MIN;
	d->t_start = mono_ns();
	signal(SIGPIPE, SIG_IGN);
	d->pull_done = d->pull_kick = d->fault_cpu = -1;
	pthread_mutex_init(&d->mu, NULL);
	d->buf = malloc(WIRE_MAX_DATA_PAGES * PAGE_SIZE);
	d->zeros = calloc(1, WIN_MAX);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	int rd = o->remote ? wire_reader_init(&d->urd, WIRE_HDR_SIZE + WIRE_MAX_CTRL +
								  WIRE_URGENT_PAGES * (size_t)PAGE_SIZE)
			   : 0;
	if (!d->buf || !d->zeros || d->ep < 0 || rd < 0)
		r = ferry_fail_errno(err, "lazy-pages daemon");
	else
		r = start_guardian(d, err);
	/* started ahead of the dump: what can be done without images is done */
	if (r == 0 && o->wait_images_ms)
		r = img_wait_complete(o->dir, o->wait_images_ms, o->client_fd, err);
	if (r == 0)
		r = load_images(d, err);
	if (r == 0 && o->remote)
		r = connect_source(d, err);
	if (r == 0 && o->client_fd >= 0) {
		d->client = o->client_fd; /* the restore that started us */
		r = watch_client(d, err);
	} else if (r == 0) {
		r = listen_handover(d, err);
	}
	if (r == 0 && o->ready_fd >= 0) {
		write_all(o->ready_fd, "K", 1);
		close(o->ready_fd);
	}
	if (r == 0)
		r = loop(d, err);
	if (r == 0) {
		report(d);
		if (d->conn[1] >= 0) {
			struct wire_msg m = {.h = {.type = WT_CLOSE, .id = ++d->next_id}};
			m.u.status = 0;
			struct ferry_err e2;
			wire_send_msg(d->conn[1], &m, d->peer, &e2);
			wire_recv_msg(d->conn[1], &m, 5000, true, d->peer, &e2);
		}
		if (d->guard >= 0)
			send(d->guard, "D", 1, MSG_NOSIGNAL);
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/lazy-pages.sock", o->dir);
	if (d->ls >= 0)
		unlink(path);
	for (int i = 0; i < d->np; i++)
		close(d->p[i].uffd);
	for (int i = 0; i < 2; i++)
		if (d->conn[i] >= 0)
			close(d->conn[i]);
	if (d->mm)
		protobuf_c_message_free_unpacked(&d->mm->base, NULL);
	if (d->pr.layers)
		page_read_close(&d->pr);
	stop_puller(d);
	if (d->pull_done >= 0)
		close(d->pull_done);
	if (d->pull_kick >= 0)
		close(d->pull_kick);
	pthread_mutex_destroy(&d->mu);
	wire_reader_free(&d->urd);
	free(d->buf);
	free(d->zeros);
	free(d);
	return r;
}

/* ---- restore side ---- */

int lazy_client_connect(const char *dir, struct lazy_client *c, struct ferry_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lazy-pages.sock", dir);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return ferry_fail_errno(err, "socket");
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = ferry_fail_errno(err, "no lazy-pages daemon at %s (start `ferry lazy-pages "
					      "-D %s` first)",
					 sa.sun_path, dir);
		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

int lazy_client_handover(void *ctx, int uffd, pid_t pid, uint64_t sp_page, struct ferry_err *err)
{
	struct lazy_client *c = ctx;
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "H %d %lx %d", pid, (unsigned long)sp_page,
			 sched_getcpu());
	int e = send_fd(c->fd, buf, n, uffd);

	if (e < 0)
		return ferry_fail(err, -e, "hand the userfaultfd to the lazy-pages daemon");
	ssize_t got = read(c->fd, buf, sizeof(buf) - 1);
	if (got < 3 || strncmp(buf, "OK", 2))
		return ferry_refuse(err, EPIPE, "the lazy-pages daemon refused the process");
	return 0;
}

int lazy_client_running(struct lazy_client *c, pid_t pid, struct ferry_err *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "R %d\n", pid);

	if (write_all(c->fd, buf, n) < 0)
		return ferry_fail_errno(err, "tell the lazy-pages daemon the process runs");
	close(c->fd);
	c->fd = -1;
	return 0;
}

int lazy_client_spawn(const struct lazy_daemon_opts *o, struct lazy_client *c,
		      struct ferry_err *err)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return ferry_fail_errno(err, "socketpair");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return ferry_fail_errno(err, "fork the lazy-pages daemon");
	}
	if (pid == 0) {
		/* the restore's child: it outlives the restore, which never waits for it */
		close(sv[0]);
		detach_from_terminal(!log_to_file());
		struct lazy_daemon_opts lo = *o;
		struct ferry_err e;
		lo.client_fd = sv[1];
		lo.ready_fd = -1;
		ferry_err_clear(&e);
		int r = lazy_daemon(&lo, &e);
		if (r == -ECANCELED) /* the restore gave up waiting and said why */
			_exit(1);
		if (r < 0) {
			pr_err("lazy-pages: %s", e.msg);
			fprintf(stderr, "ferry lazy-pages: %s\n", e.msg);
			_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	c->fd = sv[0];
	return 0;
}
