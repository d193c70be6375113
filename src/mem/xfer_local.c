/*
 * page-xfer into a local image directory.
 *
 * Data goes to pages-PID.img right away (after its 4096-byte header), one
 * checksummed chunk per write_data call; the runs are kept in memory and
 * written as pagemap-PID.img at commit, together with the final header of the
 * pages file. Adjacent runs of the same kind are merged.
 *
 * The page server may also land data ahead of its chunk: it goes into the
 * pages file as it arrives (xfer_local_land*, from a pipe by splice or from a
 * buffer) and becomes a chunk when its hash follows (xfer_local_seal).
 *
 *   pages file: [hdr 4096][chunk][chunk][landed, not yet sealed ...]
 *                                       ^ off          ^ off + landed
 */
#include "mem/xfer.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/image.h"
#include "core/log.h"
#include "core/util.h"

struct xfer_local {
	struct page_xfer x;
	int dirfd;
	pid_t pid;
	int pages_fd;
	uint64_t off;         /* next data offset in the pages file */
	PageRun *runs;
	size_t nr_runs, cap_runs;
	PageChunk *chunks;
	size_t nr_chunks, cap_chunks;
	uint64_t pending;     /* data bytes announced by present runs, not yet written */
	uint64_t landed;      /* bytes written at off, not yet sealed as a chunk */
	bool no_splice;       /* the file system refused splice: read the pipe instead */
	char snapshot[64];
	char parent[64];
};

void xfer_local_set_snapshot(struct page_xfer *px, const char *snapshot, const char *parent)
{
	struct xfer_local *x = (struct xfer_local *)px;

	snprintf(x->snapshot, sizeof(x->snapshot), "%s", snapshot ? snapshot : "");
	snprintf(x->parent, sizeof(x->parent), "%s", parent ? parent : "");
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*arr, ncap * elem);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static int local_add_run(struct page_xfer *px, uint64_t vaddr, uint64_t nr, uint32_t flags,
			 struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;

	uint64_t data_off = x->off + x->pending;

	if (flags & FERRY_PR_PRESENT)
		x->pending += nr * PAGE_SIZE;
	if (x->nr_runs) {
		PageRun *last = &x->runs[x->nr_runs - 1];
		bool contiguous = last->vaddr + last->nr_pages * PAGE_SIZE == vaddr;
		if (contiguous && last->flags == flags &&
		    (!(flags & FERRY_PR_PRESENT) ||
		     last->off + last->nr_pages * PAGE_SIZE == data_off)) {
			last->nr_pages += nr;
			return 0;
		}
	}
	if (grow((void **)&x->runs, &x->cap_runs, x->nr_runs + 1, sizeof(PageRun)) < 0)
		return ferry_fail(err, ENOMEM, "page runs");
	PageRun *r = &x->runs[x->nr_runs++];
	page_run__init(r);
	r->vaddr = vaddr;
	r->nr_pages = nr;
	r->flags = flags;
	if (flags & FERRY_PR_PRESENT) {
		r->has_off = true;
		r->off = data_off;
	}
	return 0;
}

static int local_write_chunk(struct page_xfer *px, const void *buf, size_t len,
			     const uint64_t *xxh3, struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;

	if (len > x->pending)
		return ferry_fail(err, EINVAL, "page data beyond its runs (%zu > %lu bytes)", len,
				  (unsigned long)x->pending);
	if (x->landed)
		return ferry_fail(err, EINVAL, "page data while %lu landed bytes wait for their hash",
				  (unsigned long)x->landed);
	if (x->pages_fd < 0) { /* runs only: the data went elsewhere */
		x->off += len;
		x->pending -= len;
		return 0;
	}
	/* a chunk written at once is one landed and sealed straight away */
	return xfer_local_land(px, buf, len, err) ?:
	       xfer_local_seal(px, len, xxh3 ? *xxh3 : XXH3_64bits(buf, len), err);
}

static int local_write(struct page_xfer *px, const void *buf, size_t len, struct ferry_err *err)
{
	return local_write_chunk(px, buf, len, NULL, err);
}

static int local_write_hashed(struct page_xfer *px, const void *buf, size_t len, uint64_t xxh3,
			      struct ferry_err *err)
{
	return local_write_chunk(px, buf, len, &xxh3, err);
}

static int land_check(struct xfer_local *x, size_t len, struct ferry_err *err)
{
	if (x->pages_fd < 0)
		return ferry_fail(err, EINVAL, "landing page data in a sink of runs only");
	if (len > x->pending - x->landed)
		return ferry_fail(err, EINVAL, "page data beyond its runs (%zu > %lu bytes)", len,
				  (unsigned long)(x->pending - x->landed));
	return 0;
}

int xfer_local_land(struct page_xfer *px, const void *buf, size_t len, struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;
	int r = land_check(x, len, err);

	if (r < 0)
		return r;
	r = pwrite_all(x->pages_fd, buf, len, x->off + x->landed);
	if (r < 0)
		return ferry_fail(err, -r, "write pages-%d.img at offset %lu", x->pid,
				  (unsigned long)(x->off + x->landed));
	x->landed += len;
	return 0;
}

/* The pipe's next len bytes by read and pwrite, for a file system without splice. */
static int land_pipe_copy(struct xfer_local *x, int pipe_rd, size_t len, struct ferry_err *err)
{
	char buf[65536];

	while (len) {
		ssize_t got = read(pipe_rd, buf, len < sizeof(buf) ? len : sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return ferry_fail(err, got < 0 ? errno : EIO, "read page data from a pipe");
		int r = xfer_local_land(&x->x, buf, got, err);
		if (r < 0)
			return r;
		len -= got;
	}
	return 0;
}

int xfer_local_land_pipe(struct page_xfer *px, int pipe_rd, size_t len, struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;
	int r = land_check(x, len, err);

	while (r == 0 && len && !x->no_splice) {
		loff_t at = x->off + x->landed;
		ssize_t n = splice(pipe_rd, NULL, x->pages_fd, &at, len, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
			pr_debug("pages-%d.img: no splice into this file system, copying", x->pid);
			x->no_splice = true;
			break;
		}
		if (n <= 0)
			return ferry_fail(err, n < 0 ? errno : EIO, "write pages-%d.img at offset %lu",
					  x->pid, (unsigned long)(x->off + x->landed));
		x->landed += n;
		len -= n;
	}
	if (r == 0 && len)
		r = land_pipe_copy(x, pipe_rd, len, err);
	return r;
}

int xfer_local_seal(struct page_xfer *px, size_t len, uint64_t xxh3, struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;

	if (len != x->landed)
		return ferry_fail(err, EINVAL, "a chunk of %zu bytes, but %lu were landed", len,
				  (unsigned long)x->landed);
	if (grow((void **)&x->chunks, &x->cap_chunks, x->nr_chunks + 1, sizeof(PageChunk)) < 0)
		return ferry_fail(err, ENOMEM, "page chunks");
	PageChunk *c = &x->chunks[x->nr_chunks++];
	page_chunk__init(c);
	c->off = x->off;
	c->len = len;
	c->xxh3 = xxh3;
	x->off += len;
	x->pending -= len;
	x->landed = 0;
	return 0;
}

uint64_t xfer_local_landed(const struct page_xfer *px)
{
	return ((const struct xfer_local *)px)->landed;
}

static int local_commit(struct page_xfer *px, struct ferry_err *err)
{
	struct xfer_local *x = (struct xfer_local *)px;
	Pagemap pm = PAGEMAP__INIT;
	char name[64];
	int r;

	if (x->landed)
		return ferry_fail(err, EINVAL, "%lu bytes of page data without their hash",
				  (unsigned long)x->landed);
	if (x->pending)
		return ferry_fail(err, EINVAL, "last page run misses %lu bytes",
				  (unsigned long)x->pending);
	_cleanup_free_ PageRun **runs = calloc(x->nr_runs + 1, sizeof(*runs));
	_cleanup_free_ PageChunk **chunks = calloc(x->nr_chunks + 1, sizeof(*chunks));
	if (!runs || !chunks)
		return ferry_fail(err, ENOMEM, "pagemap");
	for (size_t i = 0; i < x->nr_runs; i++)
		runs[i] = &x->runs[i];
	for (size_t i = 0; i < x->nr_chunks; i++)
		chunks[i] = &x->chunks[i];
	pm.n_runs = x->nr_runs;
	pm.runs = runs;
	pm.n_chunks = x->nr_chunks;
	pm.chunks = chunks;
	pm.pages_size = x->off - FERRY_PAGES_DATA_OFF;
	if (x->snapshot[0])
		pm.snapshot_id = x->snapshot;
	if (x->parent[0])
		pm.parent_snapshot_id = x->parent;
	if (x->pages_fd < 0) {
		img_name(name, sizeof(name), "sent-pagemap", x->pid);
		return img_write(x->dirfd, name, IMG_PAGEMAP, &pm.base, err);
	}
	r = img_pages_write_hdr(x->pages_fd, pm.pages_size, err);
	if (r == 0 && img_is_durable() && fsync(x->pages_fd) < 0)
		r = ferry_fail_errno(err, "sync pages-%d.img", x->pid);
	if (r < 0)
		return r;
	img_name(name, sizeof(name), "pagemap", x->pid);
	return img_write(x->dirfd, name, IMG_PAGEMAP, &pm.base, err);
}

static void local_destroy(struct page_xfer *px)
{
	struct xfer_local *x = (struct xfer_local *)px;

	if (x->pages_fd >= 0)
		close(x->pages_fd);
	free(x->runs);
	free(x->chunks);
	free(x);
}

static const struct page_xfer_ops local_ops = {
	.add_run = local_add_run,
	.write_data = local_write,
	.write_hashed = local_write_hashed,
	.commit = local_commit,
	.destroy = local_destroy,
};

static struct xfer_local *local_new(int dirfd, pid_t pid)
{
	struct xfer_local *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->x.ops = &local_ops;
	x->dirfd = dirfd;
	x->pid = pid;
	x->off = FERRY_PAGES_DATA_OFF;
	x->pages_fd = -1;
	return x;
}

int xfer_local_open(int dirfd, pid_t pid, struct page_xfer **out, struct ferry_err *err)
{
	struct xfer_local *x = local_new(dirfd, pid);
	char name[64];

	if (!x)
		return ferry_fail(err, ENOMEM, "page xfer");
	img_name(name, sizeof(name), "pages", pid);
	x->pages_fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (x->pages_fd < 0) {
		int r = ferry_fail_errno(err, "create %s", name);
		free(x);
		return r;
	}
	x->x.takes_hash = true;
	*out = &x->x;
	return 0;
}

int xfer_runs_open(int dirfd, pid_t pid, struct page_xfer **out, struct ferry_err *err)
{
	struct xfer_local *x = local_new(dirfd, pid);

	if (!x)
		return ferry_fail(err, ENOMEM, "page xfer");
	*out = &x->x;
	return 0;
}

/* Two sinks fed the same runs and data: a remote one and a local record of the runs. */
struct xfer_tee {
	struct page_xfer x;
	struct page_xfer *a, *b;
};

static int tee_add_run(struct page_xfer *px, uint64_t vaddr, uint64_t nr, uint32_t flags,
		       struct ferry_err *err)
{
	struct xfer_tee *t = (struct xfer_tee *)px;

	return xfer_add_run(t->a, vaddr, nr, flags, err) ?: xfer_add_run(t->b, vaddr, nr, flags, err);
}

static int tee_write(struct page_xfer *px, const void *buf, size_t len, struct ferry_err *err)
{
	struct xfer_tee *t = (struct xfer_tee *)px;

	return xfer_write(t->a, buf, len, err) ?: xfer_write(t->b, buf, len, err);
}

static int tee_commit(struct page_xfer *px, struct ferry_err *err)
{
	struct xfer_tee *t = (struct xfer_tee *)px;

	return xfer_commit(t->a, err) ?: xfer_commit(t->b, err);
}

static void tee_destroy(struct page_xfer *px)
{
	struct xfer_tee *t = (struct xfer_tee *)px;

	xfer_destroy(t->a);
	xfer_destroy(t->b);
	free(t);
}

static const struct page_xfer_ops tee_ops = {
	.add_run = tee_add_run,
	.write_data = tee_write,
	.commit = tee_commit,
	.destroy = tee_destroy,
};

int xfer_tee_open(struct page_xfer *a, struct page_xfer *b, struct page_xfer **out,
		  struct ferry_err *err)
{
	struct xfer_tee *t = calloc(1, sizeof(*t));

	if (!t)
		return ferry_fail(err, ENOMEM, "page xfer");
	t->x.ops = &tee_ops;
	t->x.consumer_here = a->consumer_here || b->consumer_here;
	t->a = a;
	t->b = b;
	*out = &t->x;
	return 0;
}
