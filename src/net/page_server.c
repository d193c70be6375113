/*
 * The page server (see page_server.h).
 *
 * Threads: the main thread accepts; each connection gets a detached thread
 * that runs hello, then sessions (OPEN ... COMMIT) until CLOSE or EOF. The
 * only shared state is the server's list of sessions in progress, under one
 * mutex: it refuses a second session for the same directory and pid, and
 * serialises the final renames.
 *
 * A session's files are written by the local page-xfer sink (xfer_local.c)
 * into DIR/.ferry-ps-N, then moved into DIR/<name> at commit. Every failure
 * of a connection (bad message, bad hole, I/O error, vanished or stalled
 * peer) ends in conn_fail(): one log line, an ERROR to the peer when it can
 * still hear it, the work directory removed, the connection closed.
 *
 * Page data: runs go to the sink as they arrive (a sink takes runs ahead of
 * their data). A client that agreed on DATA_HASH in its hello cuts the data
 * into chunks itself: after at most PS_BUF_SIZE bytes it sends their XXH3-64.
 * The data is landed in the pages file as it arrives, spliced socket -> pipe
 * -> file (one copy, where receiving into a buffer and writing it made two:
 * a 1 GiB receive into tmpfs measured 250 ms of CPU against 340), and the
 * client's hash seals it as one chunk, unread here (restore checks every
 * chunk against the data). Without a pipe (out of file descriptors) the data
 * goes through the buffer instead. Without DATA_HASH, the data is received into
 * the buffer and the server cuts chunks of PS_CHUNK bytes, which the sink
 * hashes. All of it runs on the connection's own thread: a writer thread of
 * its own measured slower on 2 vCPUs, the data crossing CPUs between
 * receiving and writing costing more than the overlap gained.
 *
 *   socket --splice--> pipe --splice--> pages file [chunk][chunk][landed ...]
 *                                                   DATA_HASH seals ^
 *   buf (without DATA_HASH): [data of ADD_PAGES 0x1000 x256][free ...]
 *                            ^ len bytes not yet in the sink: one chunk at PS_CHUNK
 */
#include "net/page_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/image.h"
#include "core/log.h"
#include "core/util.h"
#include "mem/xfer.h"
#include "net/auth.h"
#include "net/wire.h"

#define PS_MAX_CONNS 256
#define PS_CHUNK (1UL << 20)      /* a chunk the server hashes itself */
#define PS_BUF_SIZE WIRE_MAX_HASHED /* the largest chunk a client hashes */
#define PS_PIPE_SIZE (1 << 20)     /* the default fs.pipe-max-size */
#define PS_DRAIN_MS 3000
#define PS_WORK_PREFIX ".ferry-ps-"

struct session {
	bool open;
	uint32_t pid;
	struct wire_open o;
	char work[64];       /* DIR/<work>: the hidden work directory */
	int workfd;
	struct page_xfer *x;
	uint64_t next_addr;  /* runs must start at or after this */
	uint64_t pages, runs;
	Pagemap *parent;     /* the parent's pagemap, when there is one */
	size_t pcur;         /* first parent run that may cover the next hole */
	uint64_t t_open;
};

struct conn {
	struct page_server *ps;
	int fd;
	unsigned id;
	char peer[128];
	struct session s;
	uint32_t ecode;      /* ERROR code for the failure being reported */
	bool hashed;         /* the client sends DATA_HASH (agreed in the hello) */
	uint8_t *buf;        /* PS_BUF_SIZE bytes, when data goes through it */
	size_t len;          /* bytes of data in buf, not yet in the sink (without DATA_HASH) */
	int pipe[2];         /* splices data into the pages file (-1: not open) */
	size_t pipe_cap;
	int lowat;           /* the socket's SO_RCVLOWAT (0: the default, one byte) */
	struct conn *next;
};

struct page_server {
	int dirfd;
	char dir[4096];
	int lfd;
	struct wire_key *key;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct conn *conns;
	unsigned nconns, next_id, next_work;
};

/* ------------------------------------------------------------- work dirs */

static void remove_work(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Work directories of a server that was killed: nobody will commit them. */
static void remove_stale_work(struct page_server *ps)
{
	int fd = dup(ps->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, PS_WORK_PREFIX, strlen(PS_WORK_PREFIX)))
			continue;
		pr_info("page server: removing %s/%s, left by a server that stopped", ps->dir,
			de->d_name);
		remove_work(ps->dirfd, de->d_name);
	}
	closedir(d);
}

/* ------------------------------------------------------------- sessions */

static bool session_busy(struct page_server *ps, struct conn *self, const struct wire_open *o)
{
	for (struct conn *c = ps->conns; c; c = c->next)
		if (c != self && c->s.open && c->s.pid == o->pid && !strcmp(c->s.o.dir, o->dir))
			return true;
	return false;
}

static void session_end(struct conn *c)
{
	struct session *s = &c->s;

	if (!s->open)
		return;
	c->len = 0;
	xfer_destroy(s->x);
	if (s->workfd >= 0)
		close(s->workfd);
	if (s->work[0])
		remove_work(c->ps->dirfd, s->work);
	if (s->parent)
		protobuf_c_message_free_unpacked(&s->parent->base, NULL);
	pthread_mutex_lock(&c->ps->lock);
	memset(s, 0, sizeof(*s));
	s->workfd = -1;
	pthread_mutex_unlock(&c->ps->lock);
}

static int fail(struct conn *c, uint32_t code, struct ferry_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct conn *c, uint32_t code, struct ferry_err *err, const char *fmt, ...)
{
	va_list ap;

	c->ecode = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = EPROTO;
	return -EPROTO;
}

/* ------------------------------------------------------------- page data */

/* Without DATA_HASH: the buffered data goes to the sink as one chunk, hashed there. */
static int flush_data(struct conn *c, struct ferry_err *err)
{
	int r;

	if (!c->len)
		return 0;
	r = xfer_write(c->s.x, c->buf, c->len, err);
	c->len = 0;
	if (r < 0)
		c->ecode = WE_IO;
	return r;
}

/* A receive (recv or splice) that returned n <= 0: 0 to try again (EINTR), else the failure. */
static int recv_failed(struct conn *c, ssize_t n, struct ferry_err *err)
{
	if (n < 0 && errno == EINTR)
		return 0;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) /* SO_RCVTIMEO */
		return wire_stalled(c->peer, WIRE_IDLE_TIMEOUT_MS, err);
	if (n < 0)
		return ferry_fail_errno(err, "receive from %s", c->peer);
	return wire_closed(c->peer, true, err);
}

/*
 * Page data in one blocking receive that waits for all of it (MSG_WAITALL):
 * far fewer system calls and wakeups than taking what is there and polling,
 * each of which costs a hypercall on this kind of VM. The socket's receive
 * timeout (set after the hello) still drops a stalled peer.
 */
static int recv_all(struct conn *c, uint8_t *buf, size_t len, struct ferry_err *err)
{
	int r;

	while (len) {
		ssize_t got = recv(c->fd, buf, len, MSG_WAITALL);
		if (got > 0) {
			buf += got;
			len -= got;
		} else if ((r = recv_failed(c, got, err)) < 0) {
			return r;
		}
	}
	return 0;
}

/* Without DATA_HASH: len bytes of page data into the buffer, every full chunk written. */
static int recv_data(struct conn *c, uint64_t len, struct ferry_err *err)
{
	while (len) {
		size_t take = PS_CHUNK - c->len < len ? PS_CHUNK - c->len : len;
		int r = recv_all(c, c->buf + c->len, take, err);
		if (r < 0)
			return r;
		c->len += take;
		len -= take;
		if (c->len == PS_CHUNK && (r = flush_data(c, err)) < 0)
			return r;
	}
	return 0;
}

/*
 * The next at most len bytes of the socket into the pipe; returns how many.
 * The socket's low-water mark is raised to len first (a bound the client's
 * message will reach), so that this thread wakes once for the whole piece
 * rather than for every segment of it (a wakeup from the other vCPU costs
 * 40-100 us here). 1 GiB dumps to a loopback server, ABBA, 20 each: median
 * 391 ms against 444 without the mark (and 340 against 358 for a mark of
 * 256 KiB).
 * The kernel caps the mark by the receive buffer, so a full buffer still wakes
 * us; data_done() puts it back to one byte for the next message header.
 */
static ssize_t splice_in(struct conn *c, size_t len, struct ferry_err *err)
{
	int lowat = len;

	if (lowat != c->lowat && setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
					    sizeof(lowat)) == 0)
		c->lowat = lowat;
	for (;;) {
		ssize_t n = splice(c->fd, NULL, c->pipe[1], NULL, len, SPLICE_F_MOVE);
		if (n > 0)
			return n;
		int r = recv_failed(c, n, err);
		if (r < 0)
			return r;
	}
}

static int data_done(struct conn *c, int r)
{
	int one = 1;

	if (c->lowat > 1 && setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) == 0)
		c->lowat = 1;
	return r;
}

/* With DATA_HASH: len bytes of page data landed in the pages file, sealed by the next DATA_HASH. */
static int land_data(struct conn *c, uint64_t len, struct ferry_err *err)
{
	uint64_t landed = xfer_local_landed(c->s.x);
	int r;

	if (len > PS_BUF_SIZE - landed)
		return fail(c, WE_PROTO, err,
			    "%s/pid %u: more than %lu bytes of page data without DATA_HASH",
			    c->s.o.dir, c->s.pid, (unsigned long)PS_BUF_SIZE);
	while (len) {
		size_t take = len;
		if (c->pipe[0] >= 0) {
			ssize_t n = splice_in(c, take < c->pipe_cap ? take : c->pipe_cap, err);
			if (n < 0)
				return data_done(c, n);
			take = n;
			r = xfer_local_land_pipe(c->s.x, c->pipe[0], take, err);
		} else {
			r = recv_all(c, c->buf, take, err);
			if (r < 0)
				return r;
			r = xfer_local_land(c->s.x, c->buf, take, err);
		}
		if (r < 0) {
			c->ecode = WE_IO;
			return data_done(c, r);
		}
		len -= take;
	}
	return data_done(c, 0);
}

/* What page data goes through: a pipe to splice with, else a buffer. */
static int data_path(struct conn *c, struct ferry_err *err)
{
	if (c->hashed && c->pipe[0] < 0 && pipe2(c->pipe, O_CLOEXEC) == 0) {
		int cap = fcntl(c->pipe[1], F_SETPIPE_SZ, PS_PIPE_SIZE);
		if (cap < 0) /* beyond fs.pipe-max-size: keep the default */
			cap = fcntl(c->pipe[1], F_GETPIPE_SZ);
		c->pipe_cap = cap > 0 ? (size_t)cap : PAGE_SIZE;
	}
	if (c->pipe[0] >= 0 || c->buf)
		return 0;
	if (!(c->buf = malloc(PS_BUF_SIZE))) {
		c->ecode = WE_IO;
		return ferry_fail(err, ENOMEM, "page server: data buffer");
	}
	return 0;
}

static int do_data_hash(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	if (!c->s.open)
		return fail(c, WE_STATE, err, "DATA_HASH before OPEN");
	if (!c->hashed)
		return fail(c, WE_STATE, err, "DATA_HASH, but the hello did not agree on it");
	uint64_t landed = xfer_local_landed(c->s.x);
	if (m->u.hash.len != landed)
		return fail(c, WE_PROTO, err,
			    "%s/pid %u: DATA_HASH covers %lu bytes, %zu were sent since the last",
			    c->s.o.dir, c->s.pid, (unsigned long)m->u.hash.len, (unsigned long)landed);
	int r = xfer_local_seal(c->s.x, m->u.hash.len, m->u.hash.xxh3, err);
	if (r < 0)
		c->ecode = WE_IO;
	return r;
}

/* The parent's pagemap, checked: it must be there, of the snapshot the client means, sorted. */
static int load_parent(struct conn *c, struct ferry_err *err)
{
	struct session *s = &c->s;
	char name[64];
	ProtobufCMessage *msg;
	int r;

	_cleanup_close_ int pfd = openat(c->ps->dirfd, s->o.parent_dir,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return fail(c, WE_NO_PARENT, err, "parent directory %s is not on this server",
			    s->o.parent_dir);
	img_name(name, sizeof(name), "pagemap", s->pid);
	if (faccessat(pfd, name, F_OK, 0) < 0)
		return fail(c, WE_NO_PARENT, err, "parent %s holds no %s on this server",
			    s->o.parent_dir, name);
	r = img_read(pfd, name, IMG_PAGEMAP, &msg, err);
	if (r < 0) {
		c->ecode = WE_IO;
		return ferry_wrap(err, "parent %s", s->o.parent_dir);
	}
	s->parent = (Pagemap *)msg;
	if (s->o.parent_snapshot_id[0] && s->parent->snapshot_id &&
	    strcmp(s->parent->snapshot_id, s->o.parent_snapshot_id))
		return fail(c, WE_PARENT_MISMATCH, err,
			    "parent %s holds snapshot %s, not %s (dumped again since?)",
			    s->o.parent_dir, s->parent->snapshot_id, s->o.parent_snapshot_id);
	uint64_t end = 0;
	for (size_t i = 0; i < s->parent->n_runs; i++) {
		const PageRun *pr = s->parent->runs[i];
		if (pr->vaddr < end || pr->nr_pages > WIRE_MAX_RUN_PAGES)
			return fail(c, WE_IO, err, "parent %s: %s is malformed (run %zu)",
				    s->o.parent_dir, name, i);
		end = pr->vaddr + pr->nr_pages * PAGE_SIZE;
	}
	return 0;
}

static int do_open(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	struct page_server *ps = c->ps;
	struct session *s = &c->s;
	int r;

	if (s->open)
		return fail(c, WE_STATE, err, "OPEN while %s/pid %u is open", s->o.dir, s->pid);
	pthread_mutex_lock(&ps->lock);
	bool busy = session_busy(ps, c, &m->u.open);
	if (!busy) {
		s->open = true;
		s->o = m->u.open;
		s->pid = m->u.open.pid;
		s->workfd = -1;
		snprintf(s->work, sizeof(s->work), PS_WORK_PREFIX "%u-%u", c->id, ps->next_work++);
	}
	pthread_mutex_unlock(&ps->lock);
	if (busy)
		return fail(c, WE_BUSY, err, "%s/pid %u is being written by another session",
			    m->u.open.dir, m->u.open.pid);
	s->t_open = mono_ns();
	if (s->o.parent_dir[0]) {
		r = load_parent(c, err);
		if (r < 0)
			return r;
	}
	if (mkdirat(ps->dirfd, s->work, 0700) < 0) {
		s->work[0] = '\0';
		c->ecode = WE_IO;
		return ferry_fail_errno(err, "create work directory in %s", ps->dir);
	}
	s->workfd = openat(ps->dirfd, s->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->workfd < 0) {
		c->ecode = WE_IO;
		return ferry_fail_errno(err, "open %s/%s", ps->dir, s->work);
	}
	r = data_path(c, err);
	if (r < 0)
		return r;
	r = xfer_local_open(s->workfd, s->pid, &s->x, err);
	if (r < 0) {
		c->ecode = WE_IO;
		return r;
	}
	xfer_local_set_snapshot(s->x, s->o.snapshot_id[0] ? s->o.snapshot_id : NULL,
				s->o.parent_snapshot_id[0] ? s->o.parent_snapshot_id : NULL);
	pr_info("conn %u (%s): open %s/pid %u, parent %s", c->id, c->peer, s->o.dir, s->pid,
		s->o.parent_dir[0] ? s->o.parent_dir : "none");
	return wire_send_ok(c->fd, m->h.id, c->peer, err);
}

/* Every page of [a, b) must be held by the parent (present, zero, or its own hole). */
static int check_hole(struct conn *c, uint64_t a, uint64_t b, struct ferry_err *err)
{
	struct session *s = &c->s;
	const Pagemap *p = s->parent;
	uint64_t pos = a;

	if (!p)
		return fail(c, WE_HOLE, err, "hole %#lx-%#lx, but %s/pid %u has no parent",
			    (unsigned long)a, (unsigned long)b, s->o.dir, s->pid);
	while (s->pcur < p->n_runs &&
	       p->runs[s->pcur]->vaddr + p->runs[s->pcur]->nr_pages * PAGE_SIZE <= a)
		s->pcur++;
	for (size_t i = s->pcur; pos < b; i++) {
		const PageRun *r = i < p->n_runs ? p->runs[i] : NULL;
		uint32_t ok = FERRY_PR_PRESENT | FERRY_PR_ZERO | FERRY_PR_IN_PARENT;
		if (!r || r->vaddr > pos || !(r->flags & ok))
			return fail(c, WE_HOLE, err,
				    "hole %#lx-%#lx: page %#lx is not in parent %s",
				    (unsigned long)a, (unsigned long)b, (unsigned long)pos,
				    s->o.parent_dir);
		pos = r->vaddr + r->nr_pages * PAGE_SIZE;
	}
	return 0;
}

static int do_run(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	struct session *s = &c->s;
	uint64_t a = m->u.run.vaddr, b = a + m->u.run.nr_pages * PAGE_SIZE;
	uint32_t flags = 0;
	int r;

	if (!s->open)
		return fail(c, WE_STATE, err, "%s before OPEN", wire_type_name(m->h.type));
	if (a < s->next_addr)
		return fail(c, WE_PROTO, err, "%s/pid %u: run at %#lx is below the end of the last (%#lx)",
			    s->o.dir, s->pid, (unsigned long)a, (unsigned long)s->next_addr);
	s->next_addr = b;
	switch (m->h.type) {
	case WT_ADD_PAGES: flags = FERRY_PR_PRESENT; break;
	case WT_ADD_HOLE: flags = FERRY_PR_IN_PARENT; break;
	case WT_ADD_ZERO: flags = FERRY_PR_ZERO; break;
	case WT_ADD_LAZY: flags = FERRY_PR_LAZY; break;
	default: return 0; /* ADD_ABSENT: absent pages have no run */
	}
	if (flags == FERRY_PR_IN_PARENT) {
		r = check_hole(c, a, b, err);
		if (r < 0)
			return r;
	}
	r = xfer_add_run(s->x, a, m->u.run.nr_pages, flags, err);
	if (r < 0) {
		c->ecode = WE_IO;
		return r;
	}
	s->runs++;
	if (flags != FERRY_PR_PRESENT)
		return 0;
	s->pages += m->u.run.nr_pages;
	return c->hashed ? land_data(c, wire_data_len(m), err) : recv_data(c, wire_data_len(m), err);
}

/* Make the session's two files visible under DIR/<name>: the pagemap last. */
static int publish(struct conn *c, struct ferry_err *err)
{
	struct page_server *ps = c->ps;
	struct session *s = &c->s;
	char pages[64], pagemap[64];
	struct stat st;
	int r = 0;

	img_name(pages, sizeof(pages), "pages", s->pid);
	img_name(pagemap, sizeof(pagemap), "pagemap", s->pid);
	if (fsync(s->workfd) < 0)
		return ferry_fail_errno(err, "sync %s/%s", ps->dir, s->work);
	pthread_mutex_lock(&ps->lock);
	if (fstatat(ps->dirfd, s->o.dir, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		if (renameat(ps->dirfd, s->work, ps->dirfd, s->o.dir) < 0)
			r = ferry_fail_errno(err, "rename %s to %s in %s", s->work, s->o.dir, ps->dir);
		else
			s->work[0] = '\0';
	} else if (!S_ISDIR(st.st_mode)) {
		r = ferry_refuse(err, EEXIST, "%s/%s exists and is not a directory", ps->dir,
				 s->o.dir);
	} else {
		_cleanup_close_ int dfd = openat(ps->dirfd, s->o.dir,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			r = ferry_fail_errno(err, "open %s/%s", ps->dir, s->o.dir);
		else if (renameat(s->workfd, pages, dfd, pages) < 0 ||
			 renameat(s->workfd, pagemap, dfd, pagemap) < 0)
			r = ferry_fail_errno(err, "move %s into %s/%s", pagemap, ps->dir, s->o.dir);
		else if (fsync(dfd) < 0)
			r = ferry_fail_errno(err, "sync %s/%s", ps->dir, s->o.dir);
	}
	pthread_mutex_unlock(&ps->lock);
	if (r == 0 && fsync(ps->dirfd) < 0)
		r = ferry_fail_errno(err, "sync %s", ps->dir);
	return r;
}

static int do_commit(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	struct session *s = &c->s;
	int r;

	if (!s->open)
		return fail(c, WE_STATE, err, "COMMIT before OPEN");
	if (m->u.commit.pages != s->pages || m->u.commit.runs != s->runs)
		return fail(c, WE_PROTO, err,
			    "%s/pid %u: the client sent %lu pages in %lu runs, the server got %lu in %lu",
			    s->o.dir, s->pid, (unsigned long)m->u.commit.pages,
			    (unsigned long)m->u.commit.runs, (unsigned long)s->pages,
			    (unsigned long)s->runs);
	if (c->hashed && xfer_local_landed(s->x))
		return fail(c, WE_PROTO, err,
			    "%s/pid %u: COMMIT with %lu bytes of data without DATA_HASH", s->o.dir,
			    s->pid, (unsigned long)xfer_local_landed(s->x));
	r = flush_data(c, err);
	c->ecode = WE_IO;
	if (r == 0)
		r = xfer_commit(s->x, err);
	if (r == 0)
		r = publish(c, err);
	if (r < 0)
		return ferry_wrap(err, "commit %s/pid %u", s->o.dir, s->pid);
	double secs = (mono_ns() - s->t_open) / 1e9;
	pr_info("conn %u (%s): committed %s/pid %u: %lu pages of data, %lu runs, %.1f MB/s",
		c->id, c->peer, s->o.dir, s->pid, (unsigned long)s->pages, (unsigned long)s->runs,
		secs > 0 ? s->pages * PAGE_SIZE / secs / 1e6 : 0.0);
	session_end(c);
	return wire_send_ok(c->fd, m->h.id, c->peer, err);
}

static int do_parent_exists(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	struct wire_msg a = {.h = {.type = WT_PARENT_INFO, .id = m->h.id}};
	char name[64];
	ProtobufCMessage *msg;
	struct ferry_err e2;

	img_name(name, sizeof(name), "pagemap", m->u.parent.pid);
	_cleanup_close_ int pfd = openat(c->ps->dirfd, m->u.parent.dir,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd >= 0 && img_read(pfd, name, IMG_PAGEMAP, &msg, &e2) == 0) {
		const Pagemap *pm = (const Pagemap *)msg;
		a.u.exists = !m->u.parent.snapshot_id[0] ||
			     (pm->snapshot_id && !strcmp(pm->snapshot_id, m->u.parent.snapshot_id));
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	return wire_send_msg(c->fd, &a, c->peer, err);
}

/* One request. Returns 1 when the connection ends in order, 0 to go on, <0 on failure. */
static int handle(struct conn *c, const struct wire_msg *m, struct ferry_err *err)
{
	switch (m->h.type) {
	case WT_OPEN: return do_open(c, m, err);
	case WT_ADD_PAGES:
	case WT_ADD_HOLE:
	case WT_ADD_ZERO:
	case WT_ADD_ABSENT:
	case WT_ADD_LAZY: return do_run(c, m, err);
	case WT_DATA_HASH: return do_data_hash(c, m, err);
	case WT_COMMIT: return do_commit(c, m, err);
	case WT_PARENT_EXISTS: return do_parent_exists(c, m, err);
	case WT_CLOSE:
		if (c->s.open)
			pr_info("conn %u (%s): %s/pid %u closed without commit (status %u): dropped",
				c->id, c->peer, c->s.o.dir, c->s.pid, m->u.status);
		session_end(c);
		wire_send_ok(c->fd, m->h.id, c->peer, err);
		return 1;
	case WT_GET:
		return fail(c, WE_UNSUPPORTED, err, "GET: this page server stores pages, it does not serve them (yet)");
	default:
		return fail(c, WE_STATE, err, "%s is not a request", wire_type_name(m->h.type));
	}
}

/* Tell the peer, then read what it still sends for a while, so that it sees our ERROR, not a reset. */
static void conn_fail(struct conn *c, const struct ferry_err *err)
{
	char sink[65536];
	uint64_t deadline = mono_ns() + PS_DRAIN_MS * 1000000ULL;

	pr_err("conn %u (%s): %s%s%s: connection dropped", c->id, c->peer, err->msg,
	       c->s.open ? "; discarding " : "", c->s.open ? c->s.o.dir : "");
	session_end(c);
	if (c->ecode)
		wire_send_error(c->fd, 0, c->ecode, err->msg);
	shutdown(c->fd, SHUT_WR);
	for (;;) {
		uint64_t now = mono_ns();
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (now >= deadline || poll(&p, 1, (deadline - now) / 1000000 + 1) <= 0)
			break;
		if (recv(c->fd, sink, sizeof(sink), 0) <= 0)
			break;
	}
}

static void serve_conn(struct conn *c)
{
	struct ferry_err err;
	uint16_t role;
	uint64_t agreed;
	struct wire_msg m;
	int r;

	ferry_err_clear(&err);
	r = wire_server_hello(c->fd, c->peer, WFEAT_DATA_HASH, c->ps->key, WIRE_IDLE_TIMEOUT_MS,
			      &role, &agreed, &err);
	c->hashed = agreed & WFEAT_DATA_HASH;
	if (r == 0 && role != WROLE_PUSH) {
		c->ecode = WE_UNSUPPORTED;
		r = fail(c, WE_UNSUPPORTED, &err, "role %u: this page server only takes pages",
			 role);
	}
	if (r < 0) {
		pr_err("conn %u (%s): %s: connection dropped", c->id, c->peer, err.msg);
		if (c->ecode)
			wire_send_error(c->fd, 0, c->ecode, err.msg);
		return;
	}
	pr_debug("conn %u (%s): hello done", c->id, c->peer);
	struct timeval tv = {WIRE_IDLE_TIMEOUT_MS / 1000, (WIRE_IDLE_TIMEOUT_MS % 1000) * 1000};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		c->ecode = WE_PROTO;
		r = wire_recv_msg(c->fd, &m, WIRE_IDLE_TIMEOUT_MS, !c->s.open, c->peer, &err);
		if (r == -ENODATA) {
			pr_debug("conn %u (%s): closed", c->id, c->peer);
			return;
		}
		if (r == -EINVAL) /* a field out of its limits, not broken framing */
			c->ecode = m.h.type == WT_OPEN || m.h.type == WT_PARENT_EXISTS ? WE_BAD_NAME
										       : WE_LIMIT;
		if (r == 0) {
			c->ecode = 0;
			r = handle(c, &m, &err);
		}
		if (r == 1)
			return;
		if (r < 0) {
			conn_fail(c, &err);
			return;
		}
	}
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct page_server *ps = c->ps;

	serve_conn(c);
	session_end(c);
	close(c->fd);
	pthread_mutex_lock(&ps->lock);
	for (struct conn **pp = &ps->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ps->nconns--;
	pthread_cond_broadcast(&ps->idle);
	pthread_mutex_unlock(&ps->lock);
	if (c->pipe[0] >= 0) {
		close(c->pipe[0]);
		close(c->pipe[1]);
	}
	free(c->buf);
	free(c);
	return NULL;
}

static void accept_one(struct page_server *ps, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;

	if (!c) {
		pr_err("page server: out of memory for a connection: dropped");
		close(fd);
		return;
	}
	c->ps = ps;
	c->fd = fd;
	c->s.workfd = -1;
	c->pipe[0] = c->pipe[1] = -1;
	wire_tune(fd);
	wire_peer_name(fd, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&ps->lock);
	if (ps->nconns >= PS_MAX_CONNS) {
		pthread_mutex_unlock(&ps->lock);
		pr_err("page server: %s: more than %d connections: dropped", c->peer, PS_MAX_CONNS);
		wire_send_error(fd, 0, WE_BUSY, "too many connections");
		close(fd);
		free(c);
		return;
	}
	c->id = ++ps->next_id;
	c->next = ps->conns;
	ps->conns = c;
	ps->nconns++;
	pthread_mutex_unlock(&ps->lock);
	pr_debug("conn %u (%s): accepted", c->id, c->peer);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		pr_err("conn %u (%s): cannot start a thread: dropped", c->id, c->peer);
		pthread_mutex_lock(&ps->lock);
		for (struct conn **pp = &ps->conns; *pp; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		ps->nconns--;
		pthread_mutex_unlock(&ps->lock);
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

int ps_open(const struct ps_opts *o, struct page_server **out, struct ferry_err *err)
{
	struct page_server *ps = calloc(1, sizeof(*ps));
	int r;

	if (!ps)
		return ferry_fail(err, ENOMEM, "page server");
	ps->dirfd = ps->lfd = -1;
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->idle, NULL);
	snprintf(ps->dir, sizeof(ps->dir), "%s", o->dir);
	r = mkdir_p(o->dir, 0700, err);
	if (r == 0) {
		ps->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ps->dirfd < 0)
			r = ferry_fail_errno(err, "open image directory %s", o->dir);
	}
	if (r == 0 && o->auth_key) {
		ps->key = malloc(sizeof(*ps->key));
		r = ps->key ? wire_key_load(o->auth_key, ps->key, err)
			    : ferry_fail(err, ENOMEM, "auth key");
	}
	if (r == 0)
		r = wire_listen(o->address, o->port, &ps->lfd, err);
	if (r < 0) {
		ps_close(ps);
		return r;
	}
	remove_stale_work(ps);
	*out = ps;
	return 0;
}

int ps_serve(struct page_server *ps, volatile sig_atomic_t *stop, struct ferry_err *err)
{
	pr_info("page server: serving %s%s", ps->dir, ps->key ? " (with auth key)" : "");
	while (!*stop) {
		struct pollfd p = {.fd = ps->lfd, .events = POLLIN};
		int r = poll(&p, 1, 500);
		if (r < 0 && errno != EINTR)
			return ferry_fail_errno(err, "wait for connections");
		if (r <= 0)
			continue;
		int fd = accept4(ps->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				pr_warn("page server: accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000);
			continue;
		}
		accept_one(ps, fd);
	}
	/* stop: wake every connection, let each remove its work directory */
	pthread_mutex_lock(&ps->lock);
	for (struct conn *c = ps->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (ps->nconns && pthread_cond_timedwait(&ps->idle, &ps->lock, &until) == 0)
		;
	pthread_mutex_unlock(&ps->lock);
	pr_info("page server: stopped");
	return 0;
}

void ps_close(struct page_server *ps)
{
	if (!ps)
		return;
	if (ps->nconns) /* threads still running: leave what they use alone */
		return;
	if (ps->lfd >= 0)
		close(ps->lfd);
	if (ps->dirfd >= 0)
		close(ps->dirfd);
	if (ps->key) {
		wire_key_wipe(ps->key);
		free(ps->key);
	}
	free(ps);
}
