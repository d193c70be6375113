/*
 * page-xfer: where dumped pages go.
 *
 * A sink receives page runs in increasing address order per process: a run
 * is (vaddr, nr_pages, flags). Each FERRY_PR_PRESENT run announces
 * nr_pages * 4096 bytes of data; the data of announced runs follows, in run
 * order, through write_data in any number of calls (a batch of runs may be
 * announced before its data). Runs of other kinds carry no data. Nothing a sink writes is visible as a complete
 * image before commit() succeeds. Backends: the local image directory
 * (xfer_local.c); the page server and the image proxy come later.
 */
#ifndef FERRY_MEM_XFER_H
#define FERRY_MEM_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

struct page_xfer;

struct page_xfer_ops {
	int (*add_run)(struct page_xfer *x, uint64_t vaddr, uint64_t nr_pages, uint32_t flags,
		       struct ferry_err *err);
	int (*write_data)(struct page_xfer *x, const void *buf, size_t len, struct ferry_err *err);
	/* write_data with the XXH3-64 of buf already computed, for sinks with takes_hash */
	int (*write_hashed)(struct page_xfer *x, const void *buf, size_t len, uint64_t xxh3,
			    struct ferry_err *err);
	int (*commit)(struct page_xfer *x, struct ferry_err *err);
	void (*destroy)(struct page_xfer *x);
};

struct page_xfer {
	const struct page_xfer_ops *ops;
	/* The sink checksums the data: a caller that already has it in cache may
	 * compute the XXH3-64 itself (off the writing thread) and call
	 * xfer_write_hashed. */
	bool takes_hash;
	/* The data's reader runs on this host's CPUs (a page server on loopback). */
	bool consumer_here;
};

/* Local image directory: pagemap-PID.img and pages-PID.img in dirfd. */
int xfer_local_open(int dirfd, pid_t pid, struct page_xfer **x, struct ferry_err *err);
/* Land data in the pages file ahead of its chunk: from buf, or the next len
 * bytes of a pipe (spliced where the file system can). xfer_local_seal then
 * makes all landed bytes one chunk with the given XXH3-64 (not checked here:
 * restore checks every chunk). Plain writes are refused while data is landed. */
int xfer_local_land(struct page_xfer *x, const void *buf, size_t len, struct ferry_err *err);
int xfer_local_land_pipe(struct page_xfer *x, int pipe_rd, size_t len, struct ferry_err *err);
int xfer_local_seal(struct page_xfer *x, size_t len, uint64_t xxh3, struct ferry_err *err);
/* Bytes landed and not yet sealed. */
uint64_t xfer_local_landed(const struct page_xfer *x);
/* Only record the runs, as sent-pagemap-PID.img (the data goes to a page server):
 * the next pre-copy round plans its holes against it. */
int xfer_runs_open(int dirfd, pid_t pid, struct page_xfer **x, struct ferry_err *err);
/* Feed a and b the same runs and data (b is committed after a). Owns both. */
int xfer_tee_open(struct page_xfer *a, struct page_xfer *b, struct page_xfer **x,
		  struct ferry_err *err);
/* Snapshot ids recorded in the pagemap (parent may be NULL). Copied. */
void xfer_local_set_snapshot(struct page_xfer *x, const char *snapshot, const char *parent);

static inline int xfer_add_run(struct page_xfer *x, uint64_t vaddr, uint64_t nr, uint32_t flags,
			       struct ferry_err *err)
{
	return x->ops->add_run(x, vaddr, nr, flags, err);
}

static inline int xfer_write(struct page_xfer *x, const void *buf, size_t len,
			     struct ferry_err *err)
{
	return x->ops->write_data(x, buf, len, err);
}

static inline int xfer_write_hashed(struct page_xfer *x, const void *buf, size_t len,
				    uint64_t xxh3, struct ferry_err *err)
{
	return x->ops->write_hashed(x, buf, len, xxh3, err);
}

static inline int xfer_commit(struct page_xfer *x, struct ferry_err *err)
{
	return x->ops->commit(x, err);
}

static inline void xfer_destroy(struct page_xfer *x)
{
	if (x)
		x->ops->destroy(x);
}

#endif
