#include "mem/dump_mem.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/image.h"
#include "core/log.h"
#include "core/util.h"
#include "mem/kapi.h"
#include "mem/page_read.h"

#define DUMP_BUF_SIZE (2UL << 20)
/* The slot of a large dump without a writer thread: read, hashed and sent while
 * it is still in this CPU's cache. 1 GiB to a loopback page server, ABBA x10:
 * median 414 ms at 512 KiB, 518 at 256 KiB; 415 at 512 KiB, 447 at 1 MiB. */
#define INLINE_BUF_SIZE (512UL << 10)
#define SCAN_VEC 512
#define BATCH_IOV 1024

static int plan_add(struct mem_plan *p, uint64_t vaddr, uint64_t nr, uint32_t flags)
{
	if (p->n) {
		struct plan_run *last = &p->runs[p->n - 1];
		if (last->flags == flags && last->vaddr + last->nr_pages * PAGE_SIZE == vaddr) {
			last->nr_pages += nr;
			return 0;
		}
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		struct plan_run *nr_ = realloc(p->runs, cap * sizeof(*nr_));
		if (!nr_)
			return -ENOMEM;
		p->runs = nr_;
		p->cap = cap;
	}
	p->runs[p->n++] = (struct plan_run){vaddr, nr, flags};
	return 0;
}

void mem_plan_free(struct mem_plan *plan)
{
	free(plan->runs);
	plan->runs = NULL;
	plan->n = plan->cap = 0;
}

bool pagemap_covers(const Pagemap *pm, uint64_t vaddr, uint64_t len)
{
	uint64_t end = vaddr + len;

	for (size_t i = pagemap_lower(pm, vaddr); i < pm->n_runs && vaddr < end; i++) {
		const PageRun *r = pm->runs[i];
		if (r->vaddr > vaddr ||
		    !(r->flags & (FERRY_PR_PRESENT | FERRY_PR_IN_PARENT | FERRY_PR_ZERO)))
			return false;
		vaddr = r->vaddr + r->nr_pages * PAGE_SIZE;
	}
	return vaddr >= end;
}

static int classify(pid_t pid, const struct mem_area *a, const Pagemap *parent, uint64_t start,
		    uint64_t len, uint64_t cat, struct mem_plan *plan, struct mem_stats *st,
		    struct ferry_err *err)
{
	uint64_t nr = len / PAGE_SIZE;
	uint32_t flags;

	if (cat & PAGE_IS_PFNZERO) {
		flags = FERRY_PR_ZERO;
		st->pages_zero += nr;
	} else if (a->kind == MA_PRIVATE_FILE && (cat & PAGE_IS_FILE) && !(cat & PAGE_IS_SWAPPED)) {
		return 0; /* still the file's page: the mapping provides it */
	} else if (a->holes && !(cat & PAGE_IS_WRITTEN)) {
		if (!parent || !pagemap_covers(parent, start, len))
			return ferry_refuse(err, EINVAL,
					    "pid %d: pages %#lx-%#lx were not written since the parent "
					    "round, but the parent image does not hold them",
					    pid, (unsigned long)start, (unsigned long)(start + len));
		flags = FERRY_PR_IN_PARENT;
		st->pages_in_parent += nr;
	} else {
		flags = FERRY_PR_PRESENT;
		st->pages_written += nr;
	}
	if (plan_add(plan, start, nr, flags) < 0)
		return ferry_fail(err, ENOMEM, "page plan");
	return 0;
}

/* Swap type 31 is the kernel's PTE marker: an empty page write-protected by
 * userfaultfd (WP_UNPOPULATED). PAGEMAP_SCAN calls it swapped; it holds no data. */
#define SWP_TYPE_PTE_MARKER 31
#define PM_ENTRY_SWAP (1ULL << 62)
#define PM_ENTRY_PRESENT (1ULL << 63)

static bool is_marker(uint64_t e)
{
	return (e & PM_ENTRY_SWAP) && !(e & PM_ENTRY_PRESENT) && (e & 0x1f) == SWP_TYPE_PTE_MARKER;
}

/* A swapped-only region: drop the markers, classify the rest. */
static int classify_swapped(pid_t pid, int pagemap_fd, const struct mem_area *a,
			    const Pagemap *parent, uint64_t start, uint64_t end, uint64_t cat,
			    struct mem_plan *plan, struct mem_stats *st, struct ferry_err *err)
{
	uint64_t ents[512];

	while (start < end) {
		uint64_t n = (end - start) / PAGE_SIZE;
		if (n > ARRAY_SIZE(ents))
			n = ARRAY_SIZE(ents);
		int r = pread_all(pagemap_fd, ents, n * sizeof(ents[0]), start / PAGE_SIZE * 8);
		if (r < 0)
			return ferry_fail(err, -r, "pid %d: read pagemap at %#lx", pid,
					  (unsigned long)start);
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;
			bool marker = is_marker(ents[i]);
			while (j < n && is_marker(ents[j]) == marker)
				j++;
			if (!marker) {
				r = classify(pid, a, parent, start + i * PAGE_SIZE, (j - i) * PAGE_SIZE,
					     cat, plan, st, err);
				if (r < 0)
					return r;
			}
			i = j;
		}
		start += n * PAGE_SIZE;
	}
	return 0;
}

static int plan_private(pid_t pid, int pagemap_fd, const struct mem_area *a, const Pagemap *parent,
			struct mem_plan *plan, struct mem_stats *st, struct ferry_err *err)
{
	struct page_region vec[SCAN_VEC];
	uint64_t pos = a->start;

	while (pos < a->end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = a->rearm ? PM_SCAN_WP_MATCHING : 0,
			.start = pos,
			.end = a->end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			/* PAGE_IS_FILE costs a look at every page's struct page: only
			 * file mappings need it */
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO |
				       PAGE_IS_WRITTEN |
				       (a->kind == MA_PRIVATE_FILE ? PAGE_IS_FILE : 0),
		};
		uint64_t t0 = mono_ns();
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		st->scan_ns += mono_ns() - t0;
		if (n < 0)
			return ferry_fail_errno(err, "pid %d: scan pages %#lx-%#lx", pid,
						(unsigned long)pos, (unsigned long)a->end);
		for (long i = 0; i < n; i++) {
			uint64_t cat = vec[i].categories;
			int r;

			if ((cat & PAGE_IS_SWAPPED) && !(cat & PAGE_IS_PRESENT))
				r = classify_swapped(pid, pagemap_fd, a, parent, vec[i].start,
						     vec[i].end, cat, plan, st, err);
			else
				r = classify(pid, a, parent, vec[i].start, vec[i].end - vec[i].start,
					     cat, plan, st, err);
			if (r < 0)
				return r;
		}
		if (arg.walk_end <= pos)
			return ferry_refuse(err, EIO, "pid %d: page scan made no progress at %#lx",
					    pid, (unsigned long)pos);
		pos = arg.walk_end;
	}
	return 0;
}

static int plan_shared(pid_t pid, const struct mem_area *a, struct mem_plan *plan,
		       struct mem_stats *st, struct ferry_err *err)
{
	char path[96];
	uint64_t end = a->pgoff + (a->end - a->start);
	uint64_t off = a->pgoff;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)a->start,
		 (unsigned long)a->end);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferry_fail_errno(err, "open %s", path);
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			return ferry_fail_errno(err, "seek data in %s", path);
		}
		if ((uint64_t)data >= end)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return ferry_fail_errno(err, "seek hole in %s", path);
		uint64_t from = PAGE_ALIGN_DOWN((uint64_t)data);
		uint64_t stop = PAGE_ALIGN_UP((uint64_t)hole < end ? (uint64_t)hole : end);
		uint64_t nr = (stop - from) / PAGE_SIZE;
		if (plan_add(plan, a->start + (from - a->pgoff), nr, FERRY_PR_PRESENT) < 0)
			return ferry_fail(err, ENOMEM, "page plan");
		st->pages_written += nr;
		off = stop;
	}
	return 0;
}

int mem_plan_areas(pid_t pid, const struct mem_area *areas, size_t n, const Pagemap *parent,
		   struct mem_plan *plan, struct mem_stats *st, struct ferry_err *err)
{
	char path[64];
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	_cleanup_close_ int pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		return ferry_fail_errno(err, "open %s", path);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct mem_area *a = &areas[i];
		uint64_t before = st->pages_written + st->pages_zero + st->pages_in_parent;

		st->pages_scanned += (a->end - a->start) / PAGE_SIZE;
		if (a->kind == MA_SHARED_OBJ)
			r = plan_shared(pid, a, plan, st, err);
		else
			r = plan_private(pid, pagemap_fd, a, parent, plan, st, err);
		if (r == 0) {
			uint64_t saved = st->pages_written + st->pages_zero + st->pages_in_parent -
					 before;
			st->pages_absent += (a->end - a->start) / PAGE_SIZE - saved;
		}
	}
	return r;
}

/*
 * Moving the data: the calling thread reads a slot's pieces from the target
 * (process_vm_readv, /proc/PID/mem for what that cannot read) while a writer
 * thread hands the other slot's runs and data to the sink, so reading and
 * writing overlap. Each slot holds at most DUMP_BUF_SIZE bytes: the dumper's
 * memory does not depend on the target's size. With less data than one slot
 * (a lazy dump, a quiet pre-copy round) there is nothing to overlap, and
 * without a CPU for each busy thread the overlap costs more than it gains:
 * then the calling thread writes too, from one buffer.
 */
#define SLOT_RUNS 1024

struct slot {
	uint8_t *buf;
	size_t used;
	struct plan_run runs[SLOT_RUNS];
	size_t nruns;
	struct iovec remote[BATCH_IOV];
	size_t niov;
	uint64_t xxh3; /* of buf[0..used), when the sink takes_hash */
	bool full;     /* owned by the writer */
};

struct mover {
	pid_t pid;
	int mem_fd;
	bool target_runs;
	bool inline_write; /* no writer thread, one slot */
	size_t buf_size;
	struct page_xfer *x;
	struct mem_stats *st;
	struct slot slot[2];
	int cur;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int werr;
	struct ferry_err wmsg;
};

/*
 * The busy threads are the reader, the writer and, when the sink's reader is
 * on this host (a page server on loopback), that one too. Measured on 2
 * vCPUs, 1 GiB dumps in alternation: to a loopback page server 404 ms median
 * with the writer thread, 345 without; into a local image 364 with, 449
 * without.
 */
static bool writer_pays(const struct page_xfer *x)
{
	cpu_set_t set;
	int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;

	return cpus >= 2 + x->consumer_here;
}

static int read_slow(struct mover *m, struct slot *s, size_t got, struct ferry_err *err)
{
	size_t done = 0;

	for (size_t i = 0; i < s->niov; i++) {
		size_t len = s->remote[i].iov_len;
		if (done + len > got) {
			size_t skip = done >= got ? 0 : got - done;
			uint8_t *dst = s->buf + done + skip;
			int r = pread_all(m->mem_fd, dst, len - skip,
					  (uint64_t)s->remote[i].iov_base + skip);
			if (r < 0 && !m->target_runs)
				return ferry_fail(err, -r, "pid %d: read memory at %p", m->pid,
						  s->remote[i].iov_base);
			if (r < 0) /* unmapped since the plan: the next round records that */
				memset(dst, 0, len - skip);
		}
		done += len;
	}
	return 0;
}

/* A slot's runs, then its data, to the sink. */
static int write_slot(struct mover *m, const struct slot *s, struct ferry_err *err)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < s->nruns; i++)
		r = xfer_add_run(m->x, s->runs[i].vaddr, s->runs[i].nr_pages, s->runs[i].flags,
				 err);
	if (r == 0 && s->used && m->x->takes_hash)
		r = xfer_write_hashed(m->x, s->buf, s->used, s->xxh3, err);
	else if (r == 0 && s->used)
		r = xfer_write(m->x, s->buf, s->used, err);
	return r;
}

static void *writer(void *arg)
{
	struct mover *m = arg;

	for (int k = 0;; k ^= 1) {
		struct slot *s = &m->slot[k];
		pthread_mutex_lock(&m->mu);
		while (!s->full && !m->stop)
			pthread_cond_wait(&m->cv, &m->mu);
		bool have = s->full;
		pthread_mutex_unlock(&m->mu);
		if (!have)
			return NULL;
		int r = m->werr;
		if (r == 0)
			r = write_slot(m, s, &m->wmsg);
		pthread_mutex_lock(&m->mu);
		if (r < 0 && !m->werr)
			m->werr = r;
		s->full = false;
		s->used = s->nruns = s->niov = 0;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
}

/* Read the current slot's data and give it to the writer; wait for the other slot. */
static int submit(struct mover *m, struct ferry_err *err)
{
	struct slot *s = &m->slot[m->cur];
	int r = 0;

	if (!s->nruns)
		return 0;
	if (s->used) {
		struct iovec local = {s->buf, s->used};
		ssize_t got = process_vm_readv(m->pid, &local, 1, s->remote, s->niov, 0);
		if (got < 0)
			got = 0;
		if ((size_t)got < s->used) /* PROT_NONE and the like */
			r = read_slow(m, s, got, err);
		/* here, while the data is in cache, not on the writer's path */
		if (r == 0 && m->x->takes_hash)
			s->xxh3 = XXH3_64bits(s->buf, s->used);
		m->st->bytes_written += s->used;
	}
	if (m->inline_write) {
		if (r == 0)
			r = write_slot(m, s, err);
		s->used = s->nruns = s->niov = 0;
		return r;
	}
	pthread_mutex_lock(&m->mu);
	if (r == 0)
		s->full = true;
	pthread_cond_broadcast(&m->cv);
	m->cur ^= 1;
	while (m->slot[m->cur].full)
		pthread_cond_wait(&m->cv, &m->mu);
	if (m->werr && r == 0) {
		r = m->werr;
		*err = m->wmsg;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int add_run(struct mover *m, const struct plan_run *p, struct ferry_err *err)
{
	uint64_t addr = p->vaddr, len = p->nr_pages * PAGE_SIZE;
	int r;

	if (!(p->flags & FERRY_PR_PRESENT)) {
		/* sinks take runs without data between announced runs and their data */
		struct slot *s = &m->slot[m->cur];
		if (s->nruns == SLOT_RUNS && (r = submit(m, err)) < 0)
			return r;
		s = &m->slot[m->cur];
		s->runs[s->nruns++] = *p;
		return 0;
	}
	while (len) {
		struct slot *s = &m->slot[m->cur];
		if (s->used == m->buf_size || s->niov == BATCH_IOV || s->nruns == SLOT_RUNS) {
			if ((r = submit(m, err)) < 0)
				return r;
			s = &m->slot[m->cur];
		}
		uint64_t take = len < m->buf_size - s->used ? len : m->buf_size - s->used;
		s->runs[s->nruns++] = (struct plan_run){addr, take / PAGE_SIZE, FERRY_PR_PRESENT};
		s->remote[s->niov].iov_base = (void *)addr;
		s->remote[s->niov].iov_len = take;
		s->niov++;
		s->used += take;
		addr += take;
		len -= take;
	}
	return 0;
}

int mem_transfer(pid_t pid, const struct mem_plan *plan, bool target_runs, struct page_xfer *x,
		 struct mem_stats *st, struct ferry_err *err)
{
	char path[64];
	struct mover *m = calloc(1, sizeof(*m));
	pthread_t wt;
	int r = 0;

	if (!m)
		return ferry_fail(err, ENOMEM, "dump buffers");
	m->pid = pid;
	m->x = x;
	m->st = st;
	m->target_runs = target_runs;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	/* a lazy dump, or a round where little changed: nothing to overlap, and
	 * a thread and two large buffers would cost more than the copy; or no
	 * CPU for the writer thread */
	uint64_t present = 0;
	for (size_t i = 0; i < plan->n; i++)
		if (plan->runs[i].flags & FERRY_PR_PRESENT)
			present += plan->runs[i].nr_pages * PAGE_SIZE;
	m->inline_write = present < DUMP_BUF_SIZE || !writer_pays(x);
	if (present < DUMP_BUF_SIZE)
		m->buf_size = present ? present : PAGE_SIZE;
	else
		m->buf_size = m->inline_write ? INLINE_BUF_SIZE : DUMP_BUF_SIZE;
	m->slot[0].buf = malloc(m->buf_size);
	m->slot[1].buf = m->inline_write ? NULL : malloc(m->buf_size);
	pr_debug("pid %d: moving %lu KiB %s", pid, (unsigned long)(present >> 10),
		 m->inline_write ? "on this thread" : "with a writer thread");
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	m->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!m->slot[0].buf || (!m->inline_write && !m->slot[1].buf))
		r = ferry_fail(err, ENOMEM, "dump buffers");
	else if (m->mem_fd < 0)
		r = ferry_fail_errno(err, "open %s", path);
	else if (!m->inline_write && (r = -pthread_create(&wt, NULL, writer, m)) < 0)
		ferry_fail(err, -r, "start the writer thread");
	if (r < 0)
		goto out;
	for (size_t i = 0; r == 0 && i < plan->n; i++)
		r = add_run(m, &plan->runs[i], err);
	if (r == 0)
		r = submit(m, err);
	if (m->inline_write)
		goto out;
	pthread_mutex_lock(&m->mu);
	while (r == 0 && (m->slot[0].full || m->slot[1].full))
		pthread_cond_wait(&m->cv, &m->mu);
	m->stop = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(wt, NULL);
	if (r == 0 && m->werr) {
		r = m->werr;
		*err = m->wmsg;
	}
out:
	if (m->mem_fd >= 0)
		close(m->mem_fd);
	free(m->slot[0].buf);
	free(m->slot[1].buf);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m);
	return r;
}
