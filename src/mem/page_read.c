#include "mem/page_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/util.h"

/* Runs must be sorted, inside the data file, and not overlap. */
static int check_runs(const struct page_layer *l, struct ferry_err *err)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < l->pm->n_runs; i++) {
		const PageRun *r = l->pm->runs[i];
		if (r->nr_pages == 0 || r->nr_pages > (1ULL << 36) || r->vaddr & (PAGE_SIZE - 1) ||
		    r->vaddr < prev_end)
			return ferry_refuse(err, EINVAL, "%s: page run %zu at %#lx is malformed",
					  l->path, i, (unsigned long)r->vaddr);
		prev_end = r->vaddr + r->nr_pages * PAGE_SIZE;
		if (!(r->flags & FERRY_PR_PRESENT))
			continue;
		if (!r->has_off || r->off < FERRY_PAGES_DATA_OFF ||
		    r->off + r->nr_pages * PAGE_SIZE > FERRY_PAGES_DATA_OFF + l->data_len)
			return ferry_refuse(err, EINVAL,
					  "%s: page run at %#lx points outside the page data",
					  l->path, (unsigned long)r->vaddr);
	}
	return 0;
}

int page_read_open_local(const char *dir, pid_t pid, struct page_read *pr, struct ferry_err *err)
{
	char name[64];
	ProtobufCMessage *msg;
	int r;

	memset(pr, 0, sizeof(*pr));
	pr->layers = calloc(1, sizeof(*pr->layers));
	if (!pr->layers)
		return ferry_fail(err, ENOMEM, "page read");
	pr->nr_layers = 1;
	struct page_layer *l = &pr->layers[0];
	l->fd = -1;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ferry_fail_errno(err, "open %s", dir);
	img_name(name, sizeof(name), "pagemap", pid);
	r = img_read(dirfd, name, IMG_PAGEMAP, &msg, err);
	if (r < 0)
		return r;
	l->pm = (Pagemap *)msg;
	img_name(name, sizeof(name), "pages", pid);
	snprintf(l->path, sizeof(l->path), "%s/%s", dir, name);
	l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		return ferry_fail_errno(err, "open %s", l->path);
	r = img_pages_check_hdr(l->fd, l->path, &l->data_len, err);
	if (r < 0)
		return r;
	if (l->data_len != l->pm->pages_size)
		return ferry_refuse(err, EINVAL, "%s holds %lu bytes of pages, its pagemap says %lu",
				  l->path, (unsigned long)l->data_len,
				  (unsigned long)l->pm->pages_size);
	return check_runs(l, err);
}

void page_read_close(struct page_read *pr)
{
	for (int i = 0; i < pr->nr_layers; i++) {
		if (pr->layers[i].fd >= 0)
			close(pr->layers[i].fd);
		if (pr->layers[i].pm)
			protobuf_c_message_free_unpacked(&pr->layers[i].pm->base, NULL);
	}
	free(pr->layers);
	pr->layers = NULL;
	pr->nr_layers = 0;
}

static int verify_layer(const struct page_layer *l, struct ferry_err *err)
{
	uint64_t covered = 0;
	uint8_t *map;

	if (!l->data_len)
		return 0;
	map = mmap(NULL, FERRY_PAGES_DATA_OFF + l->data_len, PROT_READ, MAP_SHARED, l->fd, 0);
	if (map == MAP_FAILED)
		return ferry_fail_errno(err, "map %s", l->path);
	madvise(map, FERRY_PAGES_DATA_OFF + l->data_len, MADV_SEQUENTIAL);
	int r = 0;
	for (size_t i = 0; i < l->pm->n_chunks && r == 0; i++) {
		const PageChunk *c = l->pm->chunks[i];
		if (c->off < FERRY_PAGES_DATA_OFF || c->off + c->len > FERRY_PAGES_DATA_OFF + l->data_len)
			r = ferry_refuse(err, EINVAL, "%s: checksum chunk %zu is out of bounds", l->path,
				       i);
		else if (XXH3_64bits(map + c->off, c->len) != c->xxh3)
			r = ferry_refuse(err, EINVAL,
				       "%s: page data corrupt (checksum mismatch at offset %lu)",
				       l->path, (unsigned long)c->off);
		covered += c->len;
	}
	munmap(map, FERRY_PAGES_DATA_OFF + l->data_len);
	if (r == 0 && covered != l->data_len)
		r = ferry_refuse(err, EINVAL, "%s: checksums cover %lu of %lu bytes", l->path,
			       (unsigned long)covered, (unsigned long)l->data_len);
	return r;
}

int page_read_verify(struct page_read *pr, struct ferry_err *err)
{
	for (int i = 0; i < pr->nr_layers; i++) {
		int r = verify_layer(&pr->layers[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int prq_add(struct pr_queue *q, uint64_t addr, uint64_t len, int layer, uint64_t off)
{
	if (q->n) {
		struct prq_piece *last = &q->p[q->n - 1];
		if (last->layer == layer && last->addr + last->len == addr &&
		    last->off + last->len == off) {
			last->len += len;
			return 0;
		}
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 256;
		struct prq_piece *np = realloc(q->p, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		q->p = np;
		q->cap = cap;
	}
	q->p[q->n++] = (struct prq_piece){addr, len, layer, off};
	return 0;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct prq_piece *x = a, *y = b;

	if (x->layer != y->layer)
		return x->layer - y->layer;
	return x->off < y->off ? -1 : x->off > y->off;
}

#define PRQ_MAX_BYTES (1UL << 30)

int prq_sync(struct pr_queue *q, prq_issue_fn issue, void *ctx, struct ferry_err *err)
{
	struct iovec iov[PRQ_MAX_IOV];
	size_t i = 0;

	/* file order: each batch is one contiguous range of one layer file */
	qsort(q->p, q->n, sizeof(*q->p), cmp_piece);
	while (i < q->n) {
		int n = 0, layer = q->p[i].layer;
		uint64_t off = q->p[i].off, next = off, total = 0;

		while (i < q->n && n < PRQ_MAX_IOV && q->p[i].layer == layer &&
		       q->p[i].off == next && total + q->p[i].len <= PRQ_MAX_BYTES) {
			iov[n].iov_base = (void *)q->p[i].addr;
			iov[n].iov_len = q->p[i].len;
			next += q->p[i].len;
			total += q->p[i].len;
			n++;
			i++;
		}
		if (n == 0) { /* a single piece larger than the byte cap: split it */
			struct prq_piece *p = &q->p[i];
			iov[0].iov_base = (void *)p->addr;
			iov[0].iov_len = PRQ_MAX_BYTES;
			int r = issue(ctx, layer, off, iov, 1, err);
			if (r < 0)
				return r;
			p->addr += PRQ_MAX_BYTES;
			p->off += PRQ_MAX_BYTES;
			p->len -= PRQ_MAX_BYTES;
			continue;
		}
		int r = issue(ctx, layer, off, iov, n, err);
		if (r < 0)
			return r;
	}
	q->n = 0;
	return 0;
}

void prq_free(struct pr_queue *q)
{
	free(q->p);
	q->p = NULL;
	q->n = q->cap = 0;
}
