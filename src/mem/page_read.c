#include "mem/page_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/hash.h"
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
		uint64_t end = FERRY_PAGES_DATA_OFF + l->data_len;
		if (!r->has_off || r->off < FERRY_PAGES_DATA_OFF || r->off > end ||
		    r->nr_pages * PAGE_SIZE > end - r->off)
			return ferry_refuse(err, EINVAL,
					  "%s: page run at %#lx points outside the page data",
					  l->path, (unsigned long)r->vaddr);
	}
	return 0;
}

static int open_layer(struct page_layer *l, const char *dir, pid_t pid, Inventory **inv,
		      struct ferry_err *err)
{
	char name[64];
	ProtobufCMessage *msg;
	int r;

	l->fd = -1;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ferry_fail_errno(err, "open image directory %s", dir);
	r = img_read(dirfd, "inventory.img", IMG_INVENTORY, &msg, err);
	if (r < 0)
		return r;
	*inv = (Inventory *)msg;
	img_name(name, sizeof(name), "pagemap", pid);
	r = img_read(dirfd, name, IMG_PAGEMAP, &msg, err);
	if (r < 0)
		return r;
	l->pm = (Pagemap *)msg;
	if (l->pm->snapshot_id && strcmp(l->pm->snapshot_id, (*inv)->snapshot_id))
		return ferry_refuse(err, EINVAL,
				    "%s: its pages belong to snapshot %s, its inventory is %s", dir,
				    l->pm->snapshot_id, (*inv)->snapshot_id);
	img_name(name, sizeof(name), "pages", pid);
	if ((size_t)snprintf(l->path, sizeof(l->path), "%.4000s/%.60s", dir, name) >= sizeof(l->path))
		return ferry_refuse(err, ENAMETOOLONG, "%s: path too long", dir);
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

#define MAX_CHAIN 4096

int page_read_open_local(const char *dir, pid_t pid, struct page_read *pr, struct ferry_err *err)
{
	char cur[4096], next[4096];
	Inventory *inv = NULL, *child = NULL;
	int r = 0;

	memset(pr, 0, sizeof(*pr));
	snprintf(cur, sizeof(cur), "%s", dir);
	for (;;) {
		if (pr->nr_layers == MAX_CHAIN) {
			r = ferry_refuse(err, ELOOP, "%s: parent chain longer than %d", dir, MAX_CHAIN);
			break;
		}
		struct page_layer *nl = realloc(pr->layers, (pr->nr_layers + 1) * sizeof(*nl));
		if (!nl) {
			r = ferry_fail(err, ENOMEM, "page layers");
			break;
		}
		pr->layers = nl;
		memset(&nl[pr->nr_layers], 0, sizeof(*nl));
		r = open_layer(&nl[pr->nr_layers++], cur, pid, &inv, err);
		if (r == 0 && child &&
		    (!child->parent_snapshot_id || strcmp(child->parent_snapshot_id, inv->snapshot_id)))
			r = ferry_refuse(err, EINVAL,
					 "%s is snapshot %s, but its child expects parent snapshot %s",
					 cur, inv->snapshot_id,
					 child->parent_snapshot_id ? child->parent_snapshot_id : "(none)");
		if (r == 0 && child &&
		    (inv->root_pid != child->root_pid || inv->start_time != child->start_time))
			r = ferry_refuse(err, EINVAL,
					 "parent image %s holds another process (pid %u), not pid %u",
					 cur, inv->root_pid, child->root_pid);
		if (child)
			protobuf_c_message_free_unpacked(&child->base, NULL);
		child = inv;
		inv = NULL;
		if (r < 0 || !child->parent_path)
			break;
		if (child->parent_path[0] == '/')
			snprintf(next, sizeof(next), "%s", child->parent_path);
		else
			snprintf(next, sizeof(next), "%.2000s/%.2000s", cur, child->parent_path);
		memcpy(cur, next, sizeof(cur));
	}
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	if (child)
		protobuf_c_message_free_unpacked(&child->base, NULL);
	if (r < 0)
		return ferry_wrap(err, "pages of pid %d", pid);
	return 0;
}

size_t pagemap_lower(const Pagemap *pm, uint64_t addr)
{
	size_t lo = 0, hi = pm->n_runs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pm->runs[mid]->vaddr + pm->runs[mid]->nr_pages * PAGE_SIZE <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Queue [addr, addr+len) from `layer` downwards; every page must be found. */
static int resolve(const struct page_read *pr, int layer, uint64_t addr, uint64_t len,
		   struct pr_queue *q, struct ferry_err *err)
{
	const Pagemap *pm;
	uint64_t end = addr + len;

	if (layer >= pr->nr_layers)
		return ferry_refuse(err, EINVAL,
				    "pages %#lx-%#lx are holes, but no parent image holds them",
				    (unsigned long)addr, (unsigned long)end);
	pm = pr->layers[layer].pm;
	for (size_t i = pagemap_lower(pm, addr); i < pm->n_runs && addr < end; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t rend = r->vaddr + r->nr_pages * PAGE_SIZE;
		if (r->vaddr > addr)
			return ferry_refuse(err, EINVAL,
					    "pages %#lx-%#lx are holes, but the parent image %s lacks them",
					    (unsigned long)addr,
					    (unsigned long)(r->vaddr < end ? r->vaddr : end),
					    pr->layers[layer].path);
		uint64_t stop = rend < end ? rend : end;
		int ret = 0;
		if (r->flags & FERRY_PR_PRESENT)
			ret = prq_add(q, addr, stop - addr, layer, r->off + (addr - r->vaddr)) < 0
				      ? ferry_fail(err, ENOMEM, "page read queue")
				      : 0;
		else if (r->flags & FERRY_PR_IN_PARENT)
			ret = resolve(pr, layer + 1, addr, stop - addr, q, err);
		if (ret < 0)
			return ret;
		addr = stop;
	}
	if (addr < end)
		return ferry_refuse(err, EINVAL,
				    "pages %#lx-%#lx are holes, but the parent image %s lacks them",
				    (unsigned long)addr, (unsigned long)end, pr->layers[layer].path);
	return 0;
}

int page_read_queue_all(const struct page_read *pr, struct pr_queue *q,
			bool (*skip)(void *ctx, const PageRun *run), void *ctx,
			struct ferry_err *err)
{
	const Pagemap *pm = pr->layers[0].pm;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		int ret = 0;
		if (skip && skip(ctx, r))
			continue;
		if (r->flags & FERRY_PR_PRESENT)
			ret = prq_add(q, r->vaddr, r->nr_pages * PAGE_SIZE, 0, r->off) < 0
				      ? ferry_fail(err, ENOMEM, "page read queue")
				      : 0;
		else if (r->flags & FERRY_PR_IN_PARENT)
			ret = resolve(pr, 1, r->vaddr, r->nr_pages * PAGE_SIZE, q, err);
		if (ret < 0)
			return ret;
	}
	return 0;
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

int prq_sync_gaps(struct pr_queue *q, prq_issue_fn issue, void *ctx, uint64_t discard,
		  uint64_t discard_len, uint64_t max_gap, struct ferry_err *err)
{
	struct iovec iov[PRQ_MAX_IOV];
	size_t i = 0;

	/* file order: each batch is one contiguous range of one layer file; small
	 * gaps in the file (pages a newer layer overrides) are read into the
	 * discard buffer rather than cost a read call each */
	qsort(q->p, q->n, sizeof(*q->p), cmp_piece);
	while (i < q->n) {
		int n = 0, layer = q->p[i].layer;
		uint64_t off = q->p[i].off, next = off, total = 0;

		while (i < q->n && n < PRQ_MAX_IOV && q->p[i].layer == layer &&
		       total + q->p[i].len <= PRQ_MAX_BYTES) {
			uint64_t gap = q->p[i].off - next;
			if (q->p[i].off < next || (gap && (!discard_len || gap > max_gap ||
							   n + 1 + gap / discard_len >= PRQ_MAX_IOV)))
				break;
			while (gap) {
				uint64_t take = gap < discard_len ? gap : discard_len;
				iov[n].iov_base = (void *)discard;
				iov[n].iov_len = take;
				n++;
				gap -= take;
				next += take;
				total += take;
			}
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

int prq_sync(struct pr_queue *q, prq_issue_fn issue, void *ctx, struct ferry_err *err)
{
	return prq_sync_gaps(q, issue, ctx, 0, 0, 0, err);
}

void prq_free(struct pr_queue *q)
{
	free(q->p);
	q->p = NULL;
	q->n = q->cap = 0;
}

int page_read_queue_range(const struct page_read *pr, uint64_t start, uint64_t end,
			  struct pr_queue *q, struct ferry_err *err)
{
	const Pagemap *pm = pr->layers[0].pm;

	for (size_t i = pagemap_lower(pm, start); i < pm->n_runs && pm->runs[i]->vaddr < end; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t rend = r->vaddr + r->nr_pages * PAGE_SIZE;
		uint64_t from = r->vaddr > start ? r->vaddr : start;
		uint64_t to = rend < end ? rend : end;
		int ret = 0;
		if (r->flags & FERRY_PR_PRESENT)
			ret = prq_add(q, from, to - from, 0, r->off + (from - r->vaddr)) < 0
				      ? ferry_fail(err, ENOMEM, "page read queue")
				      : 0;
		else if (r->flags & FERRY_PR_IN_PARENT)
			ret = resolve(pr, 1, from, to - from, q, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Read the queued pieces with pread: for the lazy-pages daemon's local source. */
int page_read_pages(const struct page_read *pr, uint64_t addr, uint64_t len, void *buf,
		    struct ferry_err *err)
{
	struct pr_queue q = {0};
	int ret;

	memset(buf, 0, len);
	ret = page_read_queue_range(pr, addr, addr + len, &q, err);
	for (size_t i = 0; i < q.n && ret == 0; i++) {
		const struct prq_piece *p = &q.p[i];
		int e = pread_all(pr->layers[p->layer].fd, (uint8_t *)buf + (p->addr - addr), p->len,
				  p->off);
		if (e < 0)
			ret = ferry_fail(err, -e, "read %s", pr->layers[p->layer].path);
	}
	prq_free(&q);
	return ret;
}
