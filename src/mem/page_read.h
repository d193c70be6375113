/*
 * page-read: where restored pages come from.
 *
 * A page_read holds the page runs of one process from an image directory
 * (later: with its parent chain, a page server or an image cache) and the
 * files their data lives in ("layers"). Reads are asynchronous: the caller
 * queues (address, length, layer, offset) pieces with prq_add(), adjacent
 * pieces merge, and prq_sync() hands them to an issuer as batches of at most
 * IOV_MAX iovecs that are contiguous in one layer file, i.e. one preadv each.
 * The issuer decides where the data goes (the restore injects preadv into
 * the restored process, so pages land in its memory with one copy).
 */
#ifndef FERRY_MEM_PAGE_READ_H
#define FERRY_MEM_PAGE_READ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/err.h"
#include "core/image.h"

struct page_layer {
	char path[4096];   /* pages-PID.img of this layer */
	int fd;            /* open in the restorer */
	uint64_t data_len;
	Pagemap *pm;
};

struct page_read {
	struct page_layer *layers; /* [0] is the newest image */
	int nr_layers;
};

/* Index of the first run of pm that ends after addr (n_runs if none). */
size_t pagemap_lower(const Pagemap *pm, uint64_t addr);

/* On failure too, the caller calls page_read_close(). */
int page_read_open_local(const char *dir, pid_t pid, struct page_read *pr, struct ferry_err *err);
void page_read_close(struct page_read *pr);

/* Check every data chunk's checksum (reads the data once, from the page cache). */
int page_read_verify(struct page_read *pr, struct ferry_err *err);

/* The runs of the newest layer, in address order. */
static inline size_t page_read_nr_runs(const struct page_read *pr)
{
	return pr->layers[0].pm->n_runs;
}
static inline const PageRun *page_read_run(const struct page_read *pr, size_t i)
{
	return pr->layers[0].pm->runs[i];
}

#define PRQ_MAX_IOV 1024

struct pr_queue;

struct prq_piece {
	uint64_t addr, len;
	int layer;
	uint64_t off;
};

struct pr_queue {
	struct prq_piece *p;
	size_t n, cap;
};

/* issue: read `len` bytes starting at layer file offset `off` into the iovecs (remote addresses). */
typedef int (*prq_issue_fn)(void *ctx, int layer, uint64_t off, const struct iovec *iov, int n,
			    struct ferry_err *err);

/* Queue every page with data of the newest layer, holes resolved through the
 * parents; runs for which skip(ctx, run) says true are left out. */
int page_read_queue_all(const struct page_read *pr, struct pr_queue *q,
			bool (*skip)(void *ctx, const PageRun *run), void *ctx,
			struct ferry_err *err);

/* The same for the part of the runs inside [start, end). */
int page_read_queue_range(const struct page_read *pr, uint64_t start, uint64_t end,
			  struct pr_queue *q, struct ferry_err *err);

/* Read [addr, addr+len) of the newest layer's data (holes resolved) into buf;
 * pages without data read as zeros. */
int page_read_pages(const struct page_read *pr, uint64_t addr, uint64_t len, void *buf,
		    struct ferry_err *err);

int prq_add(struct pr_queue *q, uint64_t addr, uint64_t len, int layer, uint64_t off);
int prq_sync(struct pr_queue *q, prq_issue_fn issue, void *ctx, struct ferry_err *err);
/* The same, but a gap of at most max_gap bytes between two pieces of one
 * layer file is read into [discard, discard + discard_len) (repeated as
 * needed) instead of ending the batch. */
int prq_sync_gaps(struct pr_queue *q, prq_issue_fn issue, void *ctx, uint64_t discard,
		  uint64_t discard_len, uint64_t max_gap, struct ferry_err *err);
void prq_free(struct pr_queue *q);

#endif
