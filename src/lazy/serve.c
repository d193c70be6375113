/*
 * The source of a lazy migration: answers GET requests of pull sessions
 * (docs/protocol.md) from a frozen process or from an image directory.
 *
 * Each connection with the urgent role has a thread of its own that only
 * answers OPEN and GET, so that a fault's request never waits behind a bulk
 * answer; the main thread (the tracer of a frozen source, which alone may
 * call ptrace) serves the pull connections, COMMIT and CLOSE. COMMIT makes
 * the source unable to resume (PTRACE_O_EXITKILL) before it is acknowledged;
 * CLOSE(0) after COMMIT means every page has arrived.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "lazy/lazy.h"
#include "mem/page_read.h"
#include "net/auth.h"
#include "net/wire.h"

#define MAX_CONNS 8
#define BULK_PAGES 256      /* 1 MiB per bulk answer: a fault waits for at most one */
#define RECONNECT_MS 30000  /* after COMMIT, how long to wait for the daemon to come back */

struct server {
	int (*read)(void *ctx, uint64_t addr, uint64_t len, void *buf, struct ferry_err *err);
	int (*commit)(void *ctx, struct ferry_err *err);
	void *ctx;
	uint32_t pid;
	const char *snapshot;
	struct wire_key key;
	bool have_key;
	int ls;
	struct conn {
		int fd;
		char peer[64];
	} c[MAX_CONNS];
	int n;
	/* urgent connections, each served by its own thread */
	struct uconn {
		struct server *s;
		int fd;
		char peer[64];
		pthread_t th;
		atomic_bool dead;
		uint8_t *buf;
		struct wire_reader rd;
	} *u[MAX_CONNS];
	int nu;
	int wake; /* eventfd: an urgent thread ended */
	bool committed, done, had_conn;
	uint8_t *buf;
	atomic_uint_fast64_t pages_sent;
};

static void drop(struct server *s, int i)
{
	pr_info("lazy source: %s disconnected", s->c[i].peer);
	close(s->c[i].fd);
	s->c[i] = s->c[--s->n];
}

static int answer_get(struct server *s, int fd, const char *peer, bool urgent, uint8_t *buf,
		      const struct wire_msg *m, struct ferry_err *err)
{
	uint64_t cap = urgent ? WIRE_URGENT_PAGES : BULK_PAGES;
	uint64_t nr = m->u.get.nr_pages < cap ? m->u.get.nr_pages : cap;
	struct wire_msg a = {.h = {.type = WT_PAGES, .flags = WF_LAST, .id = m->h.id}};
	uint8_t hdr[WIRE_HDR_SIZE + WIRE_MAX_CTRL];
	int r;

	if (m->u.get.pid != s->pid) {
		wire_send_error(fd, m->h.id, WE_UNSUPPORTED, "no such process here");
		return ferry_refuse(err, EINVAL, "%s asked for pid %u, serving %u", peer,
				    m->u.get.pid, s->pid);
	}
	r = s->read(s->ctx, m->u.get.vaddr, nr * PAGE_SIZE, buf, err);
	if (r < 0) {
		struct wire_msg nf = {.h = {.type = WT_NOT_FOUND, .id = m->h.id}};
		nf.u.vaddr = m->u.get.vaddr;
		pr_debug("lazy source: %s", err->msg);
		return wire_send_msg(fd, &nf, peer, err);
	}
	a.u.pages.vaddr = m->u.get.vaddr;
	a.u.pages.nr_pages = nr;
	a.u.pages.kind = WKIND_PRESENT;
	int n = wire_encode(&a, hdr, sizeof(hdr), err);
	if (n < 0)
		return n;
	struct iovec iov[2] = {{hdr, n}, {buf, nr * PAGE_SIZE}};
	r = wire_sendv(fd, iov, 2, peer, err);
	if (r == 0)
		s->pages_sent += nr;
	return r;
}

/* The client says which dump it restores: it must be this one. */
static int answer_open(struct server *s, int fd, const char *peer, const struct wire_msg *m,
		       struct ferry_err *err)
{
	if (s->snapshot && strcmp(m->u.open.snapshot_id, s->snapshot)) {
		wire_send_error(fd, m->h.id, WE_PARENT_MISMATCH, "this source serves another snapshot");
		return ferry_refuse(err, EINVAL, "%s wants snapshot %s, this source serves %s", peer,
				    m->u.open.snapshot_id, s->snapshot);
	}
	return wire_send_ok(fd, m->h.id, peer, err);
}

/*
 * Serve a connection on the CPU where its requests arrive (on loopback, the
 * daemon thread's that sends them): a wakeup across CPUs costs far more than
 * one on the same CPU, and urgent and bulk work stay apart.
 */
static void pin_to_incoming_cpu(int fd)
{
	int cpu;
	socklen_t len = sizeof(cpu);

	if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) == 0 && cpu >= 0)
		pin_to_cpu(cpu);
}

/* An urgent connection: OPEN and GET only, each answered at once. */
static void *urgent_main(void *arg)
{
	struct uconn *u = arg;
	struct ferry_err err;
	struct wire_msg m;
	int r;

	for (bool pinned = false;;) {
		const uint8_t *data; /* requests have none */
		r = wire_reader_next(&u->rd, u->fd, &m, &data, -1, true, u->peer, &err);
		if (r < 0)
			break;
		if (!pinned && m.h.type == WT_GET) {
			pin_to_incoming_cpu(u->fd);
			pinned = true;
		}
		if (m.h.type == WT_OPEN)
			r = answer_open(u->s, u->fd, u->peer, &m, &err);
		else if (m.h.type == WT_GET)
			r = answer_get(u->s, u->fd, u->peer, true, u->buf, &m, &err);
		else if (m.h.type == WT_CLOSE)
			r = wire_send_ok(u->fd, m.h.id, u->peer, &err) < 0 ? -EPIPE : -ENODATA;
		else {
			wire_send_error(u->fd, m.h.id, WE_UNSUPPORTED, "not on an urgent connection");
			r = ferry_refuse(&err, EPROTO, "%s sent %s on its urgent connection", u->peer,
					 wire_type_name(m.h.type));
		}
		if (r < 0)
			break;
	}
	if (r != -ENODATA)
		pr_warn("lazy source: %s", err.msg);
	atomic_store(&u->dead, true);
	uint64_t one = 1;
	if (write(u->s->wake, &one, sizeof(one)) < 0) {
		/* the main thread polls with a timeout after COMMIT anyway */
	}
	return NULL;
}

static int start_urgent(struct server *s, int fd, const char *peer)
{
	struct uconn *u = calloc(1, sizeof(*u));

	if (!u || !(u->buf = malloc(WIRE_URGENT_PAGES * PAGE_SIZE)) ||
	    wire_reader_init(&u->rd, WIRE_HDR_SIZE + WIRE_MAX_CTRL) < 0) {
		if (u)
			free(u->buf);
		free(u);
		return -ENOMEM;
	}
	u->s = s;
	u->fd = fd;
	snprintf(u->peer, sizeof(u->peer), "%s", peer);
	if (pthread_create(&u->th, NULL, urgent_main, u) != 0) {
		wire_reader_free(&u->rd);
		free(u->buf);
		free(u);
		return -EAGAIN;
	}
	s->u[s->nu++] = u;
	return 0;
}

/* Join the urgent threads that ended (all of them with all). */
static void reap_urgent(struct server *s, bool all)
{
	for (int i = s->nu - 1; i >= 0; i--) {
		struct uconn *u = s->u[i];
		if (!all && !atomic_load(&u->dead))
			continue;
		if (all)
			shutdown(u->fd, SHUT_RDWR);
		pthread_join(u->th, NULL);
		pr_info("lazy source: %s disconnected", u->peer);
		close(u->fd);
		wire_reader_free(&u->rd);
		free(u->buf);
		free(u);
		s->u[i] = s->u[--s->nu];
	}
}

static int handle(struct server *s, int i, struct ferry_err *err)
{
	struct conn *c = &s->c[i];
	struct wire_msg m;
	int r = wire_recv_msg(c->fd, &m, 5000, true, c->peer, err);

	if (r < 0)
		return r;
	switch (m.h.type) {
	case WT_OPEN:
		return answer_open(s, c->fd, c->peer, &m, err);
	case WT_GET:
		return answer_get(s, c->fd, c->peer, false, s->buf, &m, err);
	case WT_COMMIT: {
		r = s->commit ? s->commit(s->ctx, err) : 0;
		if (r < 0) {
			wire_send_error(c->fd, m.h.id, WE_IO, err->msg);
			return r;
		}
		s->committed = true;
		pr_info("lazy source: the destination runs (committed)");
		return wire_send_ok(c->fd, m.h.id, c->peer, err);
	}
	case WT_CLOSE: {
		wire_send_ok(c->fd, m.h.id, c->peer, err);
		if (m.u.status == 0 && s->committed)
			s->done = true;
		return -ENODATA;
	}
	default:
		wire_send_error(c->fd, m.h.id, WE_UNSUPPORTED, "not served by a lazy source");
		return ferry_refuse(err, EPROTO, "%s sent %s to a lazy source", c->peer,
				    wire_type_name(m.h.type));
	}
}

static void accept_one(struct server *s)
{
	struct ferry_err err;
	uint64_t agreed;
	uint16_t role;
	int fd = accept4(s->ls, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->n + s->nu >= MAX_CONNS) {
		wire_send_error(fd, 0, WE_BUSY, "too many connections");
		close(fd);
		return;
	}
	struct conn *c = &s->c[s->n];
	wire_tune(fd);
	wire_peer_name(fd, c->peer, sizeof(c->peer));
	if (wire_server_hello(fd, c->peer, WFEAT_LAZY | WFEAT_URGENT | (s->have_key ? WFEAT_AUTH : 0),
			      s->have_key ? &s->key : NULL, 5000, &role, &agreed, &err) < 0) {
		pr_err("lazy source: %s", err.msg);
		close(fd);
		return;
	}
	if (role != WROLE_PULL && role != WROLE_URGENT) {
		wire_send_error(fd, 0, WE_UNSUPPORTED, "this source only serves pages");
		close(fd);
		return;
	}
	pr_info("lazy source: %s connected (%s)", c->peer, role == WROLE_URGENT ? "urgent" : "pull");
	s->had_conn = true;
	if (role == WROLE_URGENT) {
		if (start_urgent(s, fd, c->peer) < 0) {
			pr_err("lazy source: %s: no thread for its urgent connection", c->peer);
			close(fd);
		}
		return;
	}
	c->fd = fd;
	s->n++;
}

static int serve(struct server *s, const struct lazy_src_opts *o, struct ferry_err *err)
{
	uint64_t alone_since = 0;
	int r;

	if (o->auth_key) {
		r = wire_key_load(o->auth_key, &s->key, err);
		if (r < 0)
			return r;
		s->have_key = true;
	}
	if (o->listen_fd >= 0) {
		s->ls = o->listen_fd;
	} else {
		r = wire_listen(o->address, o->port, &s->ls, err);
		if (r < 0)
			return r;
	}
	s->buf = malloc(BULK_PAGES * PAGE_SIZE);
	s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->buf || s->wake < 0) {
		close(s->ls);
		free(s->buf);
		if (s->wake >= 0)
			close(s->wake);
		return ferry_fail(err, ENOMEM, "lazy source buffer");
	}
	if (o->ready_fd >= 0) {
		write_all(o->ready_fd, "K", 1);
		close(o->ready_fd);
	}
	pr_info("lazy source: serving pid %u on port %d", s->pid, o->port);
	r = 0;
	while (!s->done) {
		struct pollfd p[MAX_CONNS + 2];
		reap_urgent(s, false);
		if (s->n + s->nu == 0 && !s->committed && s->had_conn)
			break; /* the destination left before it committed: give the process back */
		int np = 0;
		for (int i = 0; i < s->n; i++)
			p[np++] = (struct pollfd){s->c[i].fd, POLLIN, 0};
		p[np++] = (struct pollfd){s->wake, POLLIN, 0};
		p[np++] = (struct pollfd){s->ls, POLLIN, 0};
		if (s->n + s->nu == 0 && s->committed) {
			if (!alone_since)
				alone_since = mono_ns();
			if (mono_ns() - alone_since > RECONNECT_MS * 1000000ULL) {
				r = ferry_refuse(err, ETIMEDOUT,
						 "the destination committed but did not come back "
						 "within %d s for the remaining pages",
						 RECONNECT_MS / 1000);
				break;
			}
		} else {
			alone_since = 0;
		}
		if (poll(p, np, s->committed ? 1000 : -1) < 0 && errno != EINTR) {
			r = ferry_fail_errno(err, "poll");
			break;
		}
		/* the pull connections (urgent ones have threads of their own) */
		for (int i = 0; i < s->n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct ferry_err e2;
			int hr = handle(s, i, &e2);
			if (hr < 0) {
				if (hr != -ENODATA)
					pr_warn("lazy source: %s", e2.msg);
				/* fds shift: poll again before touching p[] */
				drop(s, i);
				goto next;
			}
		}
		if (p[np - 2].revents & POLLIN) {
			uint64_t v;
			if (read(s->wake, &v, sizeof(v)) < 0) {
				/* nothing to clear */
			}
		}
		if (p[np - 1].revents & POLLIN)
			accept_one(s);
next:;
	}
	for (int i = s->n - 1; i >= 0; i--)
		drop(s, i);
	reap_urgent(s, true);
	close(s->wake);
	close(s->ls);
	free(s->buf);
	wire_key_wipe(&s->key);
	pr_info("lazy source: %lu pages served, %s", (unsigned long)atomic_load(&s->pages_sent),
		s->done ? "the destination has them all" : "stopped");
	return r;
}

static int read_process(void *ctx, uint64_t addr, uint64_t len, void *buf, struct ferry_err *err)
{
	struct infect *ic = ctx;

	return infect_read(ic, addr, buf, len, err);
}

static int commit_process(void *ctx, struct ferry_err *err)
{
	struct infect *ic = ctx;

	/* from now on the source can never resume: if ferry dies, it dies */
	if (ptrace(PTRACE_SETOPTIONS, ic->pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) < 0)
		return ferry_fail_errno(err, "pid %d: set exit-kill", ic->pid);
	return 0;
}

int lazy_serve_process(struct infect *ic, pid_t ns_pid, const struct lazy_src_opts *o,
		       bool *committed, struct ferry_err *err)
{
	struct server s = {.read = read_process, .commit = commit_process, .ctx = ic,
			   .pid = ns_pid, .ls = -1, .snapshot = o->snapshot_id};
	int r = serve(&s, o, err);

	*committed = s.committed;
	if (r == 0 && s.committed && !s.done)
		r = ferry_refuse(err, EPIPE, "the destination left before all pages arrived");
	return r;
}

static int read_images(void *ctx, uint64_t addr, uint64_t len, void *buf, struct ferry_err *err)
{
	return page_read_pages(ctx, addr, len, buf, err);
}

int lazy_serve_images(const char *dir, const struct lazy_src_opts *o, struct ferry_err *err)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct page_read pr;
	Pstree *pst = NULL;
	int r;

	if (dirfd < 0)
		return ferry_fail_errno(err, "open %s", dir);
	r = img_read(dirfd, "pstree.img", IMG_PSTREE, (ProtobufCMessage **)&pst, err);
	if (r < 0)
		return r;
	if (pst->n_entries < 1) {
		protobuf_c_message_free_unpacked(&pst->base, NULL);
		return ferry_refuse(err, EINVAL, "%s: empty process tree", dir);
	}
	uint32_t pid = pst->entries[0]->pid;
	protobuf_c_message_free_unpacked(&pst->base, NULL);
	r = page_read_open_local(dir, pid, &pr, err);
	if (r < 0) {
		page_read_close(&pr);
		return r;
	}
	struct server s = {.read = read_images, .ctx = &pr, .pid = pid, .ls = -1,
			   .snapshot = o->snapshot_id};
	r = serve(&s, o, err);
	page_read_close(&pr);
	return r;
}

int lazy_listen(const struct lazy_src_opts *o, int *fd, struct ferry_err *err)
{
	return wire_listen(o->address, o->port, fd, err);
}
