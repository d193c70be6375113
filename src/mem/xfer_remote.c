/*
 * page-xfer to a page server.
 *
 * Runs arrive in address order; a present run's data comes later through
 * write_data, possibly after further runs were announced. The wire needs
 * each message in order (ADD_PAGES header, then its data), so runs wait in a
 * queue:
 *
 *   queue:  [P 0x1000 x4][Z 0x5000 x2][P 0x9000 x1] ...
 *            ^ head: its data is next
 *
 * Non-present runs at the head go out as soon as every earlier present
 * run's data has gone out. Control messages collect in a small buffer and
 * leave together with the next data, as gathering sendmsgs (header, data,
 * header, data, ...) straight from the caller's buffer.
 *
 * With a server that agreed on DATA_HASH, the data is cut into chunks of at
 * most XR_CHUNK bytes, each ending at the end of a message: the XXH3-64 of
 * a chunk is computed as its pieces are queued, and DATA_HASH follows its
 * last message, so the server stores the pages without reading them again.
 * A chunk leaves in its own sendmsg right after it is hashed, while it is
 * still in this CPU's cache.
 *
 *   stream:  [ADD_PAGES x256][data][DATA_HASH 1 MiB][ADD_ZERO][ADD_PAGES x16][data] ...
 */
#include "mem/xfer_remote.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/image.h"
#include "core/log.h"
#include "core/util.h"
#include "net/auth.h"
#include "net/wire.h"

#define CTL_SIZE (64 * 1024)
#define MAX_IOV 1024
#define COMMIT_TIMEOUT_MS (10 * 60 * 1000)
#define XR_CHUNK (1UL << 20) /* data bytes per DATA_HASH; a multiple of the page size */

struct qrun {
	uint64_t vaddr, nr;
	uint32_t flags;
};

struct xfer_remote {
	struct page_xfer x;
	int fd;
	char peer[300];
	char what[300]; /* "dir/pid N" for messages */
	struct qrun *q;
	size_t head, n, cap;
	uint64_t cur_left;   /* data bytes still due for the ADD_PAGES already sent */
	uint8_t ctl[CTL_SIZE];
	size_t ctl_len, ctl_mark; /* ctl[ctl_mark..ctl_len) not yet in iov */
	struct iovec iov[MAX_IOV];
	int niov;
	uint64_t pages_sent, runs_sent;
	uint32_t next_id;
	bool hashed;         /* the server takes DATA_HASH */
	XXH3_state_t *hs;    /* of the data queued since the last DATA_HASH */
	uint64_t unhashed;   /* bytes of that data */
};

/* If the server said something (an ERROR) while we were streaming, that is the real story. */
static int server_said(struct xfer_remote *x, int wait_ms, struct ferry_err *err)
{
	struct pollfd p = {.fd = x->fd, .events = POLLIN};
	struct wire_msg m;
	struct ferry_err e2;

	if (poll(&p, 1, wait_ms) <= 0)
		return 0;
	if (wire_recv_msg(x->fd, &m, 2000, true, x->peer, &e2) < 0)
		return 0;
	if (m.h.type == WT_ERROR)
		return ferry_refuse(err, EPROTO, "page server %s: %s: %s", x->peer, x->what,
				    m.u.error.text);
	return ferry_refuse(err, EPROTO, "page server %s sent %s in the middle of %s", x->peer,
			    wire_type_name(m.h.type), x->what);
}

static int flush(struct xfer_remote *x, struct ferry_err *err)
{
	int r;

	if (x->ctl_len > x->ctl_mark) {
		x->iov[x->niov++] = (struct iovec){x->ctl + x->ctl_mark, x->ctl_len - x->ctl_mark};
		x->ctl_mark = x->ctl_len;
	}
	if (!x->niov)
		return 0;
	r = server_said(x, 0, err);
	if (r == 0)
		r = wire_sendv(x->fd, x->iov, x->niov, x->peer, err);
	if (r < 0 && server_said(x, 2000, err) == 0)
		ferry_wrap(err, "page server: %s", x->what);
	x->niov = 0;
	x->ctl_len = x->ctl_mark = 0;
	return r;
}

/* Append a message without data to the control buffer. */
static int put_ctl(struct xfer_remote *x, struct wire_msg *m, struct ferry_err *err)
{
	int r;

	if (CTL_SIZE - x->ctl_len < WIRE_HDR_SIZE + WIRE_MAX_CTRL || x->niov >= MAX_IOV - 2) {
		r = flush(x, err);
		if (r < 0)
			return r;
	}
	m->h.id = x->next_id++;
	r = wire_encode(m, x->ctl + x->ctl_len, CTL_SIZE - x->ctl_len, err);
	if (r < 0)
		return ferry_wrap(err, "%s", x->what);
	x->ctl_len += r;
	return 0;
}

/* The chunk so far is complete: its DATA_HASH goes after its data. */
static int put_hash(struct xfer_remote *x, struct ferry_err *err)
{
	struct wire_msg m = {.h = {.type = WT_DATA_HASH}};

	if (!x->unhashed)
		return 0;
	m.u.hash.len = x->unhashed;
	m.u.hash.xxh3 = XXH3_64bits_digest(x->hs);
	XXH3_64bits_reset(x->hs);
	x->unhashed = 0;
	return put_ctl(x, &m, err);
}

static int run_type(uint32_t flags)
{
	switch (flags) {
	case FERRY_PR_PRESENT: return WT_ADD_PAGES;
	case FERRY_PR_IN_PARENT: return WT_ADD_HOLE;
	case FERRY_PR_ZERO: return WT_ADD_ZERO;
	case FERRY_PR_LAZY: return WT_ADD_LAZY;
	default: return -1;
	}
}

/* Send the non-present runs at the head of the queue, if no data is due before them. */
static int drain_runs(struct xfer_remote *x, struct ferry_err *err)
{
	while (x->cur_left == 0 && x->head < x->n && x->q[x->head].flags != FERRY_PR_PRESENT) {
		struct qrun *q = &x->q[x->head++];
		struct wire_msg m = {.h = {.type = run_type(q->flags)}};
		m.u.run.vaddr = q->vaddr;
		m.u.run.nr_pages = q->nr;
		int r = put_ctl(x, &m, err);
		if (r < 0)
			return r;
		x->runs_sent++;
	}
	if (x->head == x->n)
		x->head = x->n = 0;
	return 0;
}

static int push_run(struct xfer_remote *x, uint64_t vaddr, uint64_t nr, uint32_t flags,
		    struct ferry_err *err)
{
	if (x->n == x->cap) {
		if (x->head) { /* reuse the consumed front */
			memmove(x->q, x->q + x->head, (x->n - x->head) * sizeof(*x->q));
			x->n -= x->head;
			x->head = 0;
		}
		if (x->n == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : 256;
			struct qrun *nq = realloc(x->q, cap * sizeof(*nq));
			if (!nq)
				return ferry_fail(err, ENOMEM, "page runs");
			x->q = nq;
			x->cap = cap;
		}
	}
	x->q[x->n++] = (struct qrun){vaddr, nr, flags};
	return 0;
}

static int remote_add_run(struct page_xfer *px, uint64_t vaddr, uint64_t nr, uint32_t flags,
			  struct ferry_err *err)
{
	struct xfer_remote *x = (struct xfer_remote *)px;
	int r;

	if (run_type(flags) < 0)
		return ferry_fail(err, EINVAL, "page run at %#lx has flags %#x", (unsigned long)vaddr,
				  flags);
	r = wire_check_range(vaddr, nr, WIRE_MAX_RUN_PAGES, err);
	if (r < 0)
		return ferry_wrap(err, "%s", x->what);
	/* present runs go out in pieces the server accepts in one message (and one chunk) */
	uint64_t max = x->hashed ? XR_CHUNK / PAGE_SIZE : WIRE_MAX_DATA_PAGES;
	while (flags == FERRY_PR_PRESENT && nr > max) {
		r = push_run(x, vaddr, max, flags, err);
		if (r < 0)
			return r;
		vaddr += max * PAGE_SIZE;
		nr -= max;
	}
	r = push_run(x, vaddr, nr, flags, err);
	if (r < 0)
		return r;
	return drain_runs(x, err);
}

/* Queue and send len bytes of data (cut into hashed chunks if the server takes DATA_HASH). */
static int remote_write(struct page_xfer *px, const void *buf, size_t len, struct ferry_err *err)
{
	struct xfer_remote *x = (struct xfer_remote *)px;
	const uint8_t *p = buf;
	int r;

	while (len) {
		if (x->cur_left == 0) {
			r = drain_runs(x, err);
			if (r < 0)
				return r;
			if (x->head == x->n)
				return ferry_fail(err, EINVAL, "%s: page data beyond its runs (%zu bytes)",
						  x->what, len);
			struct qrun *q = &x->q[x->head++];
			struct wire_msg m = {.h = {.type = WT_ADD_PAGES}};
			if (x->hashed && x->unhashed + q->nr * PAGE_SIZE > XR_CHUNK &&
			    (r = put_hash(x, err)) < 0)
				return r;
			m.u.run.vaddr = q->vaddr;
			m.u.run.nr_pages = q->nr;
			r = put_ctl(x, &m, err);
			if (r < 0)
				return r;
			x->cur_left = q->nr * PAGE_SIZE;
			x->pages_sent += q->nr;
			x->runs_sent++;
		}
		size_t take = len < x->cur_left ? len : x->cur_left;
		if (x->niov >= MAX_IOV - 2) {
			r = flush(x, err);
			if (r < 0)
				return r;
		}
		if (x->ctl_len > x->ctl_mark) {
			x->iov[x->niov++] = (struct iovec){x->ctl + x->ctl_mark,
							    x->ctl_len - x->ctl_mark};
			x->ctl_mark = x->ctl_len;
		}
		x->iov[x->niov++] = (struct iovec){(void *)p, take};
		x->cur_left -= take;
		p += take;
		len -= take;
		if (!x->hashed)
			continue;
		x->unhashed += take;
		XXH3_64bits_update(x->hs, p - take, take);
		if (x->cur_left == 0 && x->unhashed == XR_CHUNK &&
		    ((r = put_hash(x, err)) < 0 || (r = flush(x, err)) < 0))
			return r;
	}
	/* a chunk ends with the caller's data when a message does */
	if (x->hashed && x->cur_left == 0 && (r = put_hash(x, err)) < 0)
		return r;
	/* the data pointers are the caller's: they go out before we return */
	r = flush(x, err);
	if (r < 0)
		return r;
	return drain_runs(x, err);
}

/* Wait for the answer to request id: OK, or the server's ERROR. */
static int await_ok(struct xfer_remote *x, uint32_t id, const char *step, struct ferry_err *err)
{
	struct wire_msg m;
	int r = wire_recv_msg(x->fd, &m, COMMIT_TIMEOUT_MS, false, x->peer, err);

	if (r < 0)
		return ferry_wrap(err, "page server: %s: %s", x->what, step);
	if (m.h.type == WT_ERROR)
		return ferry_refuse(err, m.u.error.code == WE_IO ? EIO : EPROTO,
				    "page server %s: %s: %s: %s", x->peer, x->what, step,
				    m.u.error.text);
	if (m.h.type != WT_OK || m.h.id != id)
		return ferry_refuse(err, EPROTO, "page server %s answered %s #%u to %s #%u",
				    x->peer, wire_type_name(m.h.type), m.h.id, step, id);
	return 0;
}

static int remote_commit(struct page_xfer *px, struct ferry_err *err)
{
	struct xfer_remote *x = (struct xfer_remote *)px;
	struct wire_msg m = {.h = {.type = WT_COMMIT}};
	int r;

	r = drain_runs(x, err);
	if (r < 0)
		return r;
	if (x->cur_left || x->head < x->n)
		return ferry_fail(err, EINVAL, "%s: the last page runs miss their data", x->what);
	r = put_hash(x, err);
	if (r < 0)
		return r;
	m.u.commit.pages = x->pages_sent;
	m.u.commit.runs = x->runs_sent;
	r = put_ctl(x, &m, err);
	uint32_t id = m.h.id;
	if (r == 0)
		r = flush(x, err);
	if (r == 0)
		r = await_ok(x, id, "commit", err);
	if (r < 0)
		return r;
	m = (struct wire_msg){.h = {.type = WT_CLOSE}};
	r = put_ctl(x, &m, err);
	id = m.h.id;
	if (r == 0)
		r = flush(x, err);
	if (r == 0)
		r = await_ok(x, id, "close", err);
	if (r < 0) /* committed is committed: the pages are safe on the server */
		pr_warn("%s", err->msg);
	pr_info("page server %s: %s committed, %lu pages of data in %lu runs", x->peer, x->what,
		(unsigned long)x->pages_sent, (unsigned long)x->runs_sent);
	return 0;
}

static void remote_destroy(struct page_xfer *px)
{
	struct xfer_remote *x = (struct xfer_remote *)px;

	/* without a commit, closing the connection makes the server drop the session */
	if (x->fd >= 0)
		close(x->fd);
	XXH3_freeState(x->hs);
	free(x->q);
	free(x);
}

static const struct page_xfer_ops remote_ops = {
	.add_run = remote_add_run,
	.write_data = remote_write,
	.commit = remote_commit,
	.destroy = remote_destroy,
};

/* The last component of path, as the server names the directory. */
static int remote_name(const char *base, const char *path, char *out, size_t size,
		       struct ferry_err *err)
{
	char buf[PATH_MAX], real[PATH_MAX];
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof(buf))
		return ferry_refuse(err, ENAMETOOLONG, "path %s is too long", path);
	memcpy(buf, path, len);
	buf[len] = '\0';
	const char *slash = strrchr(buf, '/');
	const char *name = slash ? slash + 1 : buf;
	if (!strcmp(name, ".") || !strcmp(name, "..") || !*name) {
		char joined[2 * PATH_MAX + 2];
		if (base && buf[0] != '/')
			snprintf(joined, sizeof(joined), "%s/%s", base, buf);
		else
			snprintf(joined, sizeof(joined), "%s", buf);
		if (!realpath(joined, real))
			return ferry_fail_errno(err, "resolve %s", joined);
		slash = strrchr(real, '/');
		name = slash ? slash + 1 : real;
	}
	if (strlen(name) >= size)
		return ferry_refuse(err, ENAMETOOLONG, "directory name %s is too long", name);
	snprintf(out, size, "%s", name);
	return wire_check_name("image directory name", out, strlen(out), false, err);
}

static int fill_str(char *dst, size_t size, const char *src)
{
	if (!src)
		src = "";
	if (strlen(src) >= size)
		return -1;
	snprintf(dst, size, "%s", src);
	return 0;
}

/* Connect, say hello (with the key), and leave the connection in *x. */
static int remote_connect(const char *addr, int port, const struct xfer_session *s,
			  struct xfer_remote *x, struct ferry_err *err)
{
	struct wire_key *key = NULL;
	uint64_t agreed;
	int r;

	if (!addr)
		addr = "127.0.0.1";
	if (s->auth_key) {
		key = malloc(sizeof(*key));
		if (!key)
			return ferry_fail(err, ENOMEM, "auth key");
		r = wire_key_load(s->auth_key, key, err);
		if (r < 0) {
			free(key);
			return r;
		}
	}
	r = wire_connect(addr, port, WIRE_CONNECT_TIMEOUT_MS, &x->fd, x->peer, sizeof(x->peer),
			 err);
	if (r < 0)
		ferry_wrap(err, "page server");
	else
		x->x.consumer_here = wire_peer_is_local(x->fd);
	if (r == 0)
		r = wire_client_hello(x->fd, x->peer, WROLE_PUSH, WFEAT_DATA_HASH, key, &agreed,
				      err);
	if (key) {
		wire_key_wipe(key);
		free(key);
	}
	if (r == 0 && (agreed & WFEAT_DATA_HASH)) {
		x->hs = XXH3_createState();
		if (!x->hs || XXH3_64bits_reset(x->hs) != XXH_OK)
			return ferry_fail(err, ENOMEM, "page server: data hash");
		x->hashed = true;
	}
	return r;
}

static int fill_open(const struct xfer_session *s, struct wire_open *o, struct ferry_err *err)
{
	int r;

	o->pid = s->pid;
	r = remote_name(NULL, s->dir, o->dir, sizeof(o->dir), err);
	if (r == 0 && s->parent_dir)
		r = remote_name(s->dir, s->parent_dir, o->parent_dir, sizeof(o->parent_dir), err);
	if (r < 0)
		return r;
	if (fill_str(o->snapshot_id, sizeof(o->snapshot_id), s->snapshot_id) < 0 ||
	    fill_str(o->parent_snapshot_id, sizeof(o->parent_snapshot_id),
		     s->parent_snapshot_id) < 0)
		return ferry_refuse(err, EINVAL, "snapshot id longer than %d bytes", WIRE_MAX_SNAP);
	if (!o->parent_dir[0])
		o->parent_snapshot_id[0] = '\0';
	return 0;
}

int xfer_remote_open(const char *addr, int port, const struct xfer_session *s,
		     struct page_xfer **out, struct ferry_err *err)
{
	struct xfer_remote *x = calloc(1, sizeof(*x));
	struct wire_msg m = {.h = {.type = WT_OPEN}};
	int r;

	if (!x)
		return ferry_fail(err, ENOMEM, "page xfer");
	x->x.ops = &remote_ops;
	x->fd = -1;
	x->next_id = 16;
	r = fill_open(s, &m.u.open, err);
	if (r == 0) {
		snprintf(x->what, sizeof(x->what), "%s/pid %d", m.u.open.dir, s->pid);
		r = remote_connect(addr, port, s, x, err);
	}
	if (r == 0)
		r = put_ctl(x, &m, err);
	if (r == 0)
		r = flush(x, err);
	if (r == 0)
		r = await_ok(x, m.h.id, "open", err);
	if (r < 0) {
		remote_destroy(&x->x);
		return r;
	}
	pr_info("page server %s: %s open (parent %s)", x->peer, x->what,
		m.u.open.parent_dir[0] ? m.u.open.parent_dir : "none");
	*out = &x->x;
	return 0;
}

int xfer_remote_parent_exists(const char *addr, int port, const struct xfer_session *s,
			      bool *exists, struct ferry_err *err)
{
	struct xfer_remote *x = calloc(1, sizeof(*x));
	struct wire_msg m = {.h = {.type = WT_PARENT_EXISTS, .id = 16}};
	struct wire_open o = {0};
	int r;

	if (!x)
		return ferry_fail(err, ENOMEM, "page xfer");
	x->x.ops = &remote_ops;
	x->fd = -1;
	*exists = false;
	r = fill_open(s, &o, err);
	if (r == 0 && !o.parent_dir[0]) {
		remote_destroy(&x->x);
		return 0;
	}
	m.u.parent.pid = s->pid;
	memcpy(m.u.parent.dir, o.parent_dir, sizeof(m.u.parent.dir));
	memcpy(m.u.parent.snapshot_id, o.parent_snapshot_id, sizeof(m.u.parent.snapshot_id));
	snprintf(x->what, sizeof(x->what), "%s/pid %d", o.parent_dir, s->pid);
	if (r == 0)
		r = remote_connect(addr, port, s, x, err);
	if (r == 0)
		r = wire_send_msg(x->fd, &m, x->peer, err);
	if (r == 0)
		r = wire_recv_msg(x->fd, &m, WIRE_IDLE_TIMEOUT_MS, false, x->peer, err);
	if (r == 0 && m.h.type == WT_ERROR)
		r = ferry_refuse(err, EPROTO, "page server %s: %s", x->peer, m.u.error.text);
	else if (r == 0 && m.h.type != WT_PARENT_INFO)
		r = ferry_refuse(err, EPROTO, "page server %s answered %s to PARENT_EXISTS", x->peer,
				 wire_type_name(m.h.type));
	if (r == 0)
		*exists = m.u.exists;
	remote_destroy(&x->x);
	return r;
}
