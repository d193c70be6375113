/*
 * Unit tests of the pure page-run logic of src/mem/: the local page-xfer sink
 * (how runs merge, where their data lands, what the pagemap records), the
 * page-read queue (how pieces merge and are batched into preadv-sized
 * requests), reading through a parent chain built on disk, and
 * pagemap_covers(). Each test that touches files gets a fresh temporary
 * directory; image directories of a chain are subdirectories of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "unit.h"
#include "core/image.h"
#include "core/util.h"
#include "mem/dump_mem.h"
#include "mem/page_read.h"
#include "mem/xfer.h"

#define PID 4242
#define GIB (1ULL << 30)

#define SNAP_GRAND "11111111111111111111111111111111"
#define SNAP_PARENT "22222222222222222222222222222222"
#define SNAP_CHILD "33333333333333333333333333333333"
#define SNAP_OTHER "44444444444444444444444444444444"


#define check(call, err)                                                                           \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			fail_msg("%s: %s", #call, (err)->msg);                                     \
	} while (0)

static bool exists(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, 0) == 0;
}

/* ---- page contents: every page says which image and address it came from ---- */

static void fill_page(uint8_t *page, uint8_t seed, uint64_t vaddr)
{
	memset(page, (uint8_t)(seed + (vaddr >> PAGE_SHIFT)), PAGE_SIZE);
	memcpy(page, &vaddr, sizeof(vaddr));
	page[8] = seed;
}

static void assert_page_from(const uint8_t *page, uint8_t seed, uint64_t vaddr)
{
	uint8_t want[PAGE_SIZE];

	fill_page(want, seed, vaddr);
	if (memcmp(page, want, PAGE_SIZE))
		fail_msg("page %#lx does not hold image %u's data", (unsigned long)vaddr, seed);
}

static void assert_zero_page(const uint8_t *page, uint64_t vaddr)
{
	for (size_t i = 0; i < PAGE_SIZE; i++)
		if (page[i])
			fail_msg("page %#lx is not zero at byte %zu", (unsigned long)vaddr, i);
}

/* ---- xfer_local helpers ---- */

static void add_run(struct page_xfer *x, uint64_t vaddr, uint64_t nr, uint32_t flags)
{
	struct ferry_err err = {0};

	check(xfer_add_run(x, vaddr, nr, flags, &err), &err);
}

/* Write the data of nr present pages starting at vaddr in one write_data call. */
static void write_pages(struct page_xfer *x, uint8_t seed, uint64_t vaddr, uint64_t nr)
{
	struct ferry_err err = {0};
	uint8_t *buf = malloc(nr * PAGE_SIZE);

	assert_non_null(buf);
	for (uint64_t i = 0; i < nr; i++)
		fill_page(buf + i * PAGE_SIZE, seed, vaddr + i * PAGE_SIZE);
	check(xfer_write(x, buf, nr * PAGE_SIZE, &err), &err);
	free(buf);
}

static void commit(struct page_xfer *x)
{
	struct ferry_err err = {0};

	check(xfer_commit(x, &err), &err);
}

static Pagemap *read_pagemap(int dirfd, const char *prefix)
{
	struct ferry_err err = {0};
	ProtobufCMessage *msg;
	char name[64];

	img_name(name, sizeof(name), prefix, PID);
	check(img_read(dirfd, name, IMG_PAGEMAP, &msg, &err), &err);
	return (Pagemap *)msg;
}

static void free_pagemap(Pagemap *pm)
{
	protobuf_c_message_free_unpacked(&pm->base, NULL);
}

static void assert_run(const Pagemap *pm, size_t i, uint64_t vaddr, uint64_t nr, uint32_t flags)
{
	if (i >= pm->n_runs)
		fail_msg("pagemap has %zu runs, no run %zu", pm->n_runs, i);
	assert_int_equal(pm->runs[i]->vaddr, vaddr);
	assert_int_equal(pm->runs[i]->nr_pages, nr);
	assert_int_equal(pm->runs[i]->flags, flags);
}

static void assert_present_run(const Pagemap *pm, size_t i, uint64_t vaddr, uint64_t nr,
			       uint64_t off)
{
	assert_run(pm, i, vaddr, nr, FERRY_PR_PRESENT);
	assert_true(pm->runs[i]->has_off);
	assert_int_equal(pm->runs[i]->off, off);
}

static struct page_xfer *open_local(struct tmpdir *t)
{
	struct ferry_err err = {0};
	struct page_xfer *x = NULL;

	check(xfer_local_open(t->fd, PID, &x, &err), &err);
	return x;
}

#define DATA(page) (FERRY_PAGES_DATA_OFF + (page)*PAGE_SIZE)

/* ---- xfer_local: merging ---- */

static void adjacent_runs_without_data_merge(void **state)
{
	struct page_xfer *x = open_local(*state);
	Pagemap *pm;

	add_run(x, 0x10000, 2, FERRY_PR_ZERO);
	add_run(x, 0x12000, 3, FERRY_PR_ZERO);
	add_run(x, 0x15000, 1, FERRY_PR_IN_PARENT);
	add_run(x, 0x16000, 4, FERRY_PR_IN_PARENT);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(((struct tmpdir *)*state)->fd, "pagemap");
	assert_int_equal(pm->n_runs, 2);
	assert_run(pm, 0, 0x10000, 5, FERRY_PR_ZERO);
	assert_false(pm->runs[0]->has_off);
	assert_run(pm, 1, 0x15000, 5, FERRY_PR_IN_PARENT);
	assert_false(pm->runs[1]->has_off);
	assert_int_equal(pm->pages_size, 0);
	free_pagemap(pm);
}

static void adjacent_present_runs_with_contiguous_data_merge(void **state)
{
	struct page_xfer *x = open_local(*state);
	Pagemap *pm;

	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x10000, 2);
	add_run(x, 0x12000, 1, FERRY_PR_PRESENT);
	add_run(x, 0x13000, 3, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x12000, 4);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(((struct tmpdir *)*state)->fd, "pagemap");
	assert_int_equal(pm->n_runs, 1);
	assert_present_run(pm, 0, 0x10000, 6, DATA(0));
	assert_int_equal(pm->pages_size, 6 * PAGE_SIZE);
	free_pagemap(pm);
}

static void runs_apart_in_address_do_not_merge(void **state)
{
	struct page_xfer *x = open_local(*state);
	Pagemap *pm;

	add_run(x, 0x10000, 1, FERRY_PR_PRESENT);
	add_run(x, 0x12000, 1, FERRY_PR_PRESENT);
	add_run(x, 0x20000, 1, FERRY_PR_ZERO);
	add_run(x, 0x22000, 1, FERRY_PR_ZERO);
	write_pages(x, 1, 0x10000, 1);
	write_pages(x, 1, 0x12000, 1);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(((struct tmpdir *)*state)->fd, "pagemap");
	assert_int_equal(pm->n_runs, 4);
	assert_present_run(pm, 0, 0x10000, 1, DATA(0));
	assert_present_run(pm, 1, 0x12000, 1, DATA(1));
	assert_run(pm, 2, 0x20000, 1, FERRY_PR_ZERO);
	assert_run(pm, 3, 0x22000, 1, FERRY_PR_ZERO);
	free_pagemap(pm);
}

static void adjacent_runs_of_different_kinds_do_not_merge(void **state)
{
	struct page_xfer *x = open_local(*state);
	Pagemap *pm;

	add_run(x, 0x10000, 1, FERRY_PR_PRESENT);
	add_run(x, 0x11000, 1, FERRY_PR_ZERO);
	add_run(x, 0x12000, 1, FERRY_PR_PRESENT);
	add_run(x, 0x13000, 1, FERRY_PR_IN_PARENT);
	add_run(x, 0x14000, 1, FERRY_PR_ZERO);
	add_run(x, 0x15000, 1, FERRY_PR_PRESENT | FERRY_PR_LAZY);
	add_run(x, 0x16000, 1, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x10000, 1);
	write_pages(x, 1, 0x12000, 1);
	write_pages(x, 1, 0x15000, 2);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(((struct tmpdir *)*state)->fd, "pagemap");
	assert_int_equal(pm->n_runs, 7);
	assert_present_run(pm, 0, 0x10000, 1, DATA(0));
	assert_run(pm, 1, 0x11000, 1, FERRY_PR_ZERO);
	assert_present_run(pm, 2, 0x12000, 1, DATA(1));
	assert_run(pm, 3, 0x13000, 1, FERRY_PR_IN_PARENT);
	assert_run(pm, 4, 0x14000, 1, FERRY_PR_ZERO);
	assert_run(pm, 5, 0x15000, 1, FERRY_PR_PRESENT | FERRY_PR_LAZY);
	assert_int_equal(pm->runs[5]->off, DATA(2));
	assert_present_run(pm, 6, 0x16000, 1, DATA(3));
	free_pagemap(pm);
}

/* ---- xfer_local: data offsets and checksums ---- */

static void batch_announced_before_its_data_gets_the_right_offsets(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	uint8_t page[PAGE_SIZE];
	Pagemap *pm;

	/* the whole batch first, then its data in pieces that straddle the runs */
	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	add_run(x, 0x12000, 1, FERRY_PR_ZERO);
	add_run(x, 0x20000, 3, FERRY_PR_PRESENT);
	add_run(x, 0x30000, 1, FERRY_PR_IN_PARENT);
	add_run(x, 0x40000, 1, FERRY_PR_PRESENT);
	write_pages(x, 7, 0x10000, 1);
	{
		uint8_t buf[3 * PAGE_SIZE];
		struct ferry_err err = {0};

		fill_page(buf, 7, 0x11000);
		fill_page(buf + PAGE_SIZE, 7, 0x20000);
		fill_page(buf + 2 * PAGE_SIZE, 7, 0x21000);
		check(xfer_write(x, buf, sizeof(buf), &err), &err);
	}
	/* a run announced after part of the batch's data */
	add_run(x, 0x50000, 1, FERRY_PR_PRESENT);
	write_pages(x, 7, 0x22000, 1);
	write_pages(x, 7, 0x40000, 1);
	write_pages(x, 7, 0x50000, 1);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(t->fd, "pagemap");
	assert_int_equal(pm->n_runs, 6);
	assert_present_run(pm, 0, 0x10000, 2, DATA(0));
	assert_run(pm, 1, 0x12000, 1, FERRY_PR_ZERO);
	assert_present_run(pm, 2, 0x20000, 3, DATA(2));
	assert_run(pm, 3, 0x30000, 1, FERRY_PR_IN_PARENT);
	assert_present_run(pm, 4, 0x40000, 1, DATA(5));
	assert_present_run(pm, 5, 0x50000, 1, DATA(6));
	assert_int_equal(pm->pages_size, 7 * PAGE_SIZE);

	/* each run's offset holds that run's pages */
	{
		int fd = openat(t->fd, "pages-4242.img", O_RDONLY | O_CLOEXEC);
		const uint64_t vaddrs[] = {0x10000, 0x11000, 0x20000, 0x21000,
					   0x22000, 0x40000, 0x50000};

		assert_true(fd >= 0);
		for (size_t i = 0; i < ARRAY_SIZE(vaddrs); i++) {
			assert_int_equal(pread_all(fd, page, PAGE_SIZE, DATA(i)), 0);
			assert_page_from(page, 7, vaddrs[i]);
		}
		close(fd);
	}
	free_pagemap(pm);
}

static void chunk_checksums_cover_exactly_the_data(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	struct ferry_err err = {0};
	uint8_t data[5 * PAGE_SIZE];
	const size_t cuts[] = {PAGE_SIZE, 3 * PAGE_SIZE, PAGE_SIZE};
	uint64_t data_len = 0;
	Pagemap *pm;
	int fd;

	for (size_t i = 0; i < 5; i++)
		fill_page(data + i * PAGE_SIZE, 3, 0x10000 + i * PAGE_SIZE);
	add_run(x, 0x10000, 5, FERRY_PR_PRESENT);
	add_run(x, 0x15000, 2, FERRY_PR_ZERO);
	for (size_t i = 0, at = 0; i < ARRAY_SIZE(cuts); at += cuts[i++])
		check(xfer_write(x, data + at, cuts[i], &err), &err);
	commit(x);
	xfer_destroy(x);

	pm = read_pagemap(t->fd, "pagemap");
	assert_int_equal(pm->n_chunks, ARRAY_SIZE(cuts));
	for (size_t i = 0, at = 0; i < pm->n_chunks; at += cuts[i++]) {
		const PageChunk *c = pm->chunks[i];
		assert_int_equal(c->off, FERRY_PAGES_DATA_OFF + at);
		assert_int_equal(c->len, cuts[i]);
		assert_int_equal(c->xxh3, XXH3_64bits(data + at, cuts[i]));
	}
	assert_int_equal(pm->pages_size, sizeof(data));

	/* the pages file holds the data, after a header that says how much */
	fd = openat(t->fd, "pages-4242.img", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	check(img_pages_check_hdr(fd, "pages-4242.img", &data_len, &err), &err);
	assert_int_equal(data_len, sizeof(data));
	for (size_t i = 0; i < pm->n_chunks; i++) {
		const PageChunk *c = pm->chunks[i];
		uint8_t *buf = malloc(c->len);
		assert_non_null(buf);
		assert_int_equal(pread_all(fd, buf, c->len, c->off), 0);
		assert_int_equal(XXH3_64bits(buf, c->len), c->xxh3);
		free(buf);
	}
	close(fd);
	free_pagemap(pm);
}

/* The page server's way: data landed as it arrives (from a buffer or a pipe), sealed by its hash. */
static void landed_data_becomes_one_chunk_when_sealed(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	struct ferry_err err = {0};
	uint8_t data[5 * PAGE_SIZE], back[5 * PAGE_SIZE];
	int p[2], fd;
	Pagemap *pm;

	for (size_t i = 0; i < 5; i++)
		fill_page(data + i * PAGE_SIZE, 4, 0x10000 + i * PAGE_SIZE);
	assert_int_equal(pipe(p), 0);
	add_run(x, 0x10000, 5, FERRY_PR_PRESENT);
	/* chunk 1: a page from a buffer, two through the pipe */
	check(xfer_local_land(x, data, PAGE_SIZE, &err), &err);
	assert_int_equal(write(p[1], data + PAGE_SIZE, 2 * PAGE_SIZE), 2 * PAGE_SIZE);
	check(xfer_local_land_pipe(x, p[0], 2 * PAGE_SIZE, &err), &err);
	check(xfer_local_seal(x, 3 * PAGE_SIZE, XXH3_64bits(data, 3 * PAGE_SIZE), &err), &err);
	/* chunk 2: two pages through the pipe */
	assert_int_equal(write(p[1], data + 3 * PAGE_SIZE, 2 * PAGE_SIZE), 2 * PAGE_SIZE);
	check(xfer_local_land_pipe(x, p[0], 2 * PAGE_SIZE, &err), &err);
	check(xfer_local_seal(x, 2 * PAGE_SIZE, XXH3_64bits(data + 3 * PAGE_SIZE, 2 * PAGE_SIZE),
			      &err),
	      &err);
	commit(x);
	xfer_destroy(x);
	close(p[0]);
	close(p[1]);

	pm = read_pagemap(t->fd, "pagemap");
	assert_int_equal(pm->n_runs, 1);
	assert_present_run(pm, 0, 0x10000, 5, DATA(0));
	assert_int_equal(pm->n_chunks, 2);
	assert_int_equal(pm->chunks[0]->off, DATA(0));
	assert_int_equal(pm->chunks[0]->len, 3 * PAGE_SIZE);
	assert_int_equal(pm->chunks[1]->off, DATA(3));
	assert_int_equal(pm->chunks[1]->len, 2 * PAGE_SIZE);
	assert_int_equal(pm->chunks[1]->xxh3, XXH3_64bits(data + 3 * PAGE_SIZE, 2 * PAGE_SIZE));
	fd = openat(t->fd, "pages-4242.img", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread_all(fd, back, sizeof(back), DATA(0)), 0);
	assert_memory_equal(back, data, sizeof(data));
	close(fd);
	free_pagemap(pm);
}

static void landed_data_is_bounded_and_must_be_sealed(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	struct ferry_err err = {0};
	uint8_t buf[3 * PAGE_SIZE] = {0};

	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	/* beyond the announced runs, also counting what is landed already */
	assert_int_equal(xfer_local_land(x, buf, 3 * PAGE_SIZE, &err), -EINVAL);
	assert_msg_has(&err, "beyond");
	check(xfer_local_land(x, buf, PAGE_SIZE, &err), &err);
	assert_int_equal(xfer_local_land(x, buf, 2 * PAGE_SIZE, &err), -EINVAL);
	/* no plain write while data waits for its hash, no seal of another length */
	assert_int_equal(xfer_write(x, buf, PAGE_SIZE, &err), -EINVAL);
	assert_msg_has(&err, "landed");
	assert_int_equal(xfer_local_seal(x, 2 * PAGE_SIZE, 0, &err), -EINVAL);
	/* announced data all there, but not sealed: no commit */
	check(xfer_local_land(x, buf, PAGE_SIZE, &err), &err);
	assert_int_equal(xfer_commit(x, &err), -EINVAL);
	assert_msg_has(&err, "without their hash");
	xfer_destroy(x);
}

static void writing_more_data_than_announced_fails(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	struct ferry_err err = {0};
	uint8_t buf[2 * PAGE_SIZE] = {0};

	/* nothing announced yet */
	assert_int_equal(xfer_write(x, buf, PAGE_SIZE, &err), -EINVAL);
	assert_msg_has(&err, "beyond");

	/* runs without data announce nothing */
	ferry_err_clear(&err);
	add_run(x, 0x10000, 4, FERRY_PR_ZERO);
	add_run(x, 0x14000, 4, FERRY_PR_IN_PARENT);
	assert_int_equal(xfer_write(x, buf, PAGE_SIZE, &err), -EINVAL);

	/* one page announced, two written */
	ferry_err_clear(&err);
	add_run(x, 0x20000, 1, FERRY_PR_PRESENT);
	assert_int_equal(xfer_write(x, buf, sizeof(buf), &err), -EINVAL);
	assert_msg_has(&err, "beyond");
	xfer_destroy(x);
}

static void commit_with_data_missing_fails(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	struct ferry_err err = {0};

	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	add_run(x, 0x20000, 1, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x10000, 2);
	assert_int_equal(xfer_commit(x, &err), -EINVAL);
	assert_msg_has(&err, "4096");
	xfer_destroy(x);
	/* nothing looks like a complete image */
	assert_false(exists(t->fd, "pagemap-4242.img"));
}

/* ---- xfer_local: runs-only sink and snapshot ids ---- */

static void runs_only_sink_writes_sent_pagemap_and_no_pages_file(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_xfer *x = NULL;
	Pagemap *pm;

	check(xfer_runs_open(t->fd, PID, &x, &err), &err);
	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	add_run(x, 0x12000, 1, FERRY_PR_ZERO);
	add_run(x, 0x20000, 1, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x10000, 2);
	write_pages(x, 1, 0x20000, 1);
	commit(x);
	xfer_destroy(x);

	assert_false(exists(t->fd, "pages-4242.img"));
	assert_false(exists(t->fd, "pagemap-4242.img"));
	pm = read_pagemap(t->fd, "sent-pagemap");
	assert_int_equal(pm->n_runs, 3);
	assert_present_run(pm, 0, 0x10000, 2, DATA(0));
	assert_run(pm, 1, 0x12000, 1, FERRY_PR_ZERO);
	assert_present_run(pm, 2, 0x20000, 1, DATA(2));
	assert_int_equal(pm->n_chunks, 0);
	free_pagemap(pm);
}

static void runs_only_sink_still_refuses_missing_data(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_xfer *x = NULL;

	check(xfer_runs_open(t->fd, PID, &x, &err), &err);
	add_run(x, 0x10000, 2, FERRY_PR_PRESENT);
	write_pages(x, 1, 0x10000, 1);
	assert_int_equal(xfer_commit(x, &err), -EINVAL);
	xfer_destroy(x);
	assert_false(exists(t->fd, "sent-pagemap-4242.img"));
}

static void snapshot_ids_land_in_the_pagemap(void **state)
{
	struct tmpdir *t = *state;
	struct page_xfer *x = open_local(t);
	Pagemap *pm;

	xfer_local_set_snapshot(x, SNAP_CHILD, SNAP_PARENT);
	add_run(x, 0x10000, 1, FERRY_PR_IN_PARENT);
	commit(x);
	xfer_destroy(x);
	pm = read_pagemap(t->fd, "pagemap");
	assert_string_equal(pm->snapshot_id, SNAP_CHILD);
	assert_string_equal(pm->parent_snapshot_id, SNAP_PARENT);
	free_pagemap(pm);

	/* a first round has no parent; no ids at all leaves both out */
	x = open_local(t);
	xfer_local_set_snapshot(x, SNAP_GRAND, NULL);
	commit(x);
	xfer_destroy(x);
	pm = read_pagemap(t->fd, "pagemap");
	assert_string_equal(pm->snapshot_id, SNAP_GRAND);
	assert_null(pm->parent_snapshot_id);
	free_pagemap(pm);

	x = open_local(t);
	commit(x);
	xfer_destroy(x);
	pm = read_pagemap(t->fd, "pagemap");
	assert_null(pm->snapshot_id);
	assert_null(pm->parent_snapshot_id);
	free_pagemap(pm);
}

/* ---- prq: merging and batching ---- */

static void assert_piece(const struct pr_queue *q, size_t i, uint64_t addr, uint64_t len, int layer,
			 uint64_t off)
{
	if (i >= q->n)
		fail_msg("queue has %zu pieces, no piece %zu", q->n, i);
	assert_int_equal(q->p[i].addr, addr);
	assert_int_equal(q->p[i].len, len);
	assert_int_equal(q->p[i].layer, layer);
	assert_int_equal(q->p[i].off, off);
}

static void prq_merges_pieces_contiguous_in_address_and_offset(void **state)
{
	struct pr_queue q = {0};

	assert_int_equal(prq_add(&q, 0x10000, 0x2000, 1, DATA(4)), 0);
	assert_int_equal(prq_add(&q, 0x12000, 0x1000, 1, DATA(6)), 0);
	assert_int_equal(prq_add(&q, 0x13000, 0x3000, 1, DATA(7)), 0);
	assert_int_equal(q.n, 1);
	assert_piece(&q, 0, 0x10000, 0x6000, 1, DATA(4));
	prq_free(&q);
	assert_int_equal(q.n, 0);
	assert_null(q.p);
}

static void prq_keeps_apart_pieces_not_contiguous_in_both(void **state)
{
	struct pr_queue q = {0};

	assert_int_equal(prq_add(&q, 0x10000, 0x1000, 0, DATA(0)), 0);
	/* next address, another file offset */
	assert_int_equal(prq_add(&q, 0x11000, 0x1000, 0, DATA(5)), 0);
	/* next file offset, another address */
	assert_int_equal(prq_add(&q, 0x30000, 0x1000, 0, DATA(6)), 0);
	/* contiguous in both, but in another layer */
	assert_int_equal(prq_add(&q, 0x31000, 0x1000, 1, DATA(7)), 0);
	/* an address before the last piece's, offsets contiguous */
	assert_int_equal(prq_add(&q, 0x20000, 0x1000, 1, DATA(8)), 0);
	assert_int_equal(q.n, 5);
	assert_piece(&q, 0, 0x10000, 0x1000, 0, DATA(0));
	assert_piece(&q, 1, 0x11000, 0x1000, 0, DATA(5));
	assert_piece(&q, 2, 0x30000, 0x1000, 0, DATA(6));
	assert_piece(&q, 3, 0x31000, 0x1000, 1, DATA(7));
	assert_piece(&q, 4, 0x20000, 0x1000, 1, DATA(8));
	prq_free(&q);
}

/* What prq_sync hands to its issuer, batch by batch. */
struct batch {
	int layer;
	uint64_t off;
	int n;
	struct iovec *iov;
};

struct recorder {
	struct batch *b;
	size_t n, cap;
	int fail_at; /* batch number whose issue fails, -1 for none */
};

static int record_batch(void *ctx, int layer, uint64_t off, const struct iovec *iov, int n,
			struct ferry_err *err)
{
	struct recorder *rec = ctx;

	if ((int)rec->n == rec->fail_at)
		return ferry_refuse(err, EIO, "issue %zu fails", rec->n);
	if (rec->n == rec->cap) {
		rec->cap = rec->cap ? rec->cap * 2 : 16;
		rec->b = realloc(rec->b, rec->cap * sizeof(*rec->b));
		assert_non_null(rec->b);
	}
	struct batch *b = &rec->b[rec->n++];
	b->layer = layer;
	b->off = off;
	b->n = n;
	b->iov = malloc(n * sizeof(*iov));
	assert_non_null(b->iov);
	memcpy(b->iov, iov, n * sizeof(*iov));
	return 0;
}

static void recorder_free(struct recorder *rec)
{
	for (size_t i = 0; i < rec->n; i++)
		free(rec->b[i].iov);
	free(rec->b);
}

static uint64_t batch_bytes(const struct batch *b)
{
	uint64_t total = 0;

	for (int i = 0; i < b->n; i++)
		total += b->iov[i].iov_len;
	return total;
}

static void assert_iov(const struct batch *b, int i, uint64_t addr, uint64_t len)
{
	assert_true(i < b->n);
	assert_int_equal((uintptr_t)b->iov[i].iov_base, addr);
	assert_int_equal(b->iov[i].iov_len, len);
}

static void sync_recording(struct pr_queue *q, struct recorder *rec)
{
	struct ferry_err err = {0};

	rec->fail_at = -1;
	check(prq_sync(q, record_batch, rec, &err), &err);
	assert_int_equal(q->n, 0);
}

static void prq_sync_batches_are_file_contiguous_in_layer_offset_order(void **state)
{
	struct pr_queue q = {0};
	struct recorder rec = {0};

	assert_int_equal(prq_add(&q, 0x100000, 0x1000, 1, DATA(1)), 0);
	assert_int_equal(prq_add(&q, 0x200000, 0x1000, 0, DATA(5)), 0);
	assert_int_equal(prq_add(&q, 0x300000, 0x2000, 0, DATA(0)), 0);
	assert_int_equal(prq_add(&q, 0x400000, 0x1000, 0, DATA(2)), 0);
	assert_int_equal(prq_add(&q, 0x500000, 0x1000, 1, DATA(0)), 0);
	assert_int_equal(prq_add(&q, 0x600000, 0x1000, 0, DATA(3)), 0);
	assert_int_equal(q.n, 6);
	sync_recording(&q, &rec);

	assert_int_equal(rec.n, 3);
	/* layer 0, offsets 0..3 pages: three pieces read by one preadv */
	assert_int_equal(rec.b[0].layer, 0);
	assert_int_equal(rec.b[0].off, DATA(0));
	assert_int_equal(rec.b[0].n, 3);
	assert_iov(&rec.b[0], 0, 0x300000, 0x2000);
	assert_iov(&rec.b[0], 1, 0x400000, 0x1000);
	assert_iov(&rec.b[0], 2, 0x600000, 0x1000);
	/* layer 0, page 5: apart from the rest of the file */
	assert_int_equal(rec.b[1].layer, 0);
	assert_int_equal(rec.b[1].off, DATA(5));
	assert_int_equal(rec.b[1].n, 1);
	assert_iov(&rec.b[1], 0, 0x200000, 0x1000);
	/* layer 1 after layer 0 */
	assert_int_equal(rec.b[2].layer, 1);
	assert_int_equal(rec.b[2].off, DATA(0));
	assert_int_equal(rec.b[2].n, 2);
	assert_iov(&rec.b[2], 0, 0x500000, 0x1000);
	assert_iov(&rec.b[2], 1, 0x100000, 0x1000);

	recorder_free(&rec);
	prq_free(&q);
}

static void prq_sync_batches_hold_at_most_max_iov(void **state)
{
	const size_t nr = 2 * PRQ_MAX_IOV + 100;
	struct pr_queue q = {0};
	struct recorder rec = {0};
	size_t seen = 0;

	/* one page each, every other address, one after another in the file */
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(prq_add(&q, 0x10000000 + 2 * i * PAGE_SIZE, PAGE_SIZE, 0, DATA(i)),
				 0);
	assert_int_equal(q.n, nr);
	sync_recording(&q, &rec);

	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.b[0].n, PRQ_MAX_IOV);
	assert_int_equal(rec.b[1].n, PRQ_MAX_IOV);
	assert_int_equal(rec.b[2].n, 100);
	for (size_t b = 0; b < rec.n; b++) {
		assert_int_equal(rec.b[b].off, DATA(seen));
		for (int i = 0; i < rec.b[b].n; i++, seen++)
			assert_iov(&rec.b[b], i, 0x10000000 + 2 * seen * PAGE_SIZE, PAGE_SIZE);
	}
	assert_int_equal(seen, nr);
	recorder_free(&rec);
	prq_free(&q);
}

static void prq_sync_splits_a_piece_larger_than_one_gib(void **state)
{
	const uint64_t addr = 0x7f0000000000ULL;
	struct pr_queue q = {0};
	struct recorder rec = {0};

	assert_int_equal(prq_add(&q, addr, 3 * GIB + 0x2000, 2, DATA(1)), 0);
	sync_recording(&q, &rec);

	assert_int_equal(rec.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(rec.b[i].layer, 2);
		assert_int_equal(rec.b[i].off, DATA(1) + i * GIB);
		assert_int_equal(rec.b[i].n, 1);
		assert_iov(&rec.b[i], 0, addr + i * GIB, i < 3 ? GIB : 0x2000);
	}
	recorder_free(&rec);
	prq_free(&q);
}

static void prq_sync_batches_stay_within_one_gib(void **state)
{
	const uint64_t piece = 768ULL << 20;
	struct pr_queue q = {0};
	struct recorder rec = {0};

	/* contiguous in the file, not in memory: only the byte cap parts them */
	assert_int_equal(prq_add(&q, 0x100000000ULL, piece, 0, DATA(0)), 0);
	assert_int_equal(prq_add(&q, 0x200000000ULL, piece, 0, DATA(0) + piece), 0);
	assert_int_equal(prq_add(&q, 0x300000000ULL, GIB - piece, 0, DATA(0) + 2 * piece), 0);
	sync_recording(&q, &rec);

	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.b[0].off, DATA(0));
	assert_int_equal(rec.b[0].n, 1);
	assert_iov(&rec.b[0], 0, 0x100000000ULL, piece);
	/* the second and third fill exactly one GiB */
	assert_int_equal(rec.b[1].off, DATA(0) + piece);
	assert_int_equal(rec.b[1].n, 2);
	assert_int_equal(batch_bytes(&rec.b[1]), GIB);
	recorder_free(&rec);
	prq_free(&q);
}

static void prq_sync_passes_on_the_issuers_error(void **state)
{
	struct pr_queue q = {0};
	struct recorder rec = {.fail_at = 1};
	struct ferry_err err = {0};

	assert_int_equal(prq_add(&q, 0x10000, 0x1000, 0, DATA(0)), 0);
	assert_int_equal(prq_add(&q, 0x20000, 0x1000, 1, DATA(0)), 0);
	assert_int_equal(prq_sync(&q, record_batch, &rec, &err), -EIO);
	assert_msg_has(&err, "issue 1 fails");
	assert_int_equal(rec.n, 1);
	recorder_free(&rec);
	prq_free(&q);
}

/* ---- page_read over a parent chain on disk ---- */

struct run_spec {
	uint64_t vaddr, nr;
	uint32_t flags;
};

struct image_spec {
	const char *sub; /* subdirectory of the test's temporary directory */
	const char *snapshot;
	const char *parent_snapshot;
	const char *parent_path; /* relative to sub */
	uint8_t seed;		 /* the data of its present pages */
	const struct run_spec *runs;
	size_t nr_runs;
};

#define IMAGE(sub_, snap_, psnap_, ppath_, seed_, runs_)                                           \
	(struct image_spec)                                                                        \
	{                                                                                          \
		.sub = sub_, .snapshot = snap_, .parent_snapshot = psnap_, .parent_path = ppath_,  \
		.seed = seed_, .runs = runs_, .nr_runs = ARRAY_SIZE(runs_)                         \
	}

static void write_chain_inventory(int dirfd, const struct image_spec *s, uint32_t root_pid)
{
	struct ferry_err err = {0};
	Inventory inv = INVENTORY__INIT;

	inv.format_version = FERRY_IMG_VERSION;
	inv.snapshot_id = (char *)s->snapshot;
	inv.parent_path = (char *)s->parent_path;
	inv.parent_snapshot_id = (char *)s->parent_snapshot;
	inv.root_pid = root_pid;
	inv.arch = "x86_64";
	inv.xfeatures = 0x7;
	inv.xsave_size = 1088;
	inv.dump_time_ns = 1700000000000000000ULL;
	inv.ferry_version = "0.1.0";
	inv.has_pre_dump = true;
	inv.pre_dump = true;
	inv.has_start_time = true;
	inv.start_time = 987654;
	inv.has_complete = true;
	inv.complete = true;
	check(img_write(dirfd, "inventory.img", IMG_INVENTORY, &inv.base, &err), &err);
}

static void make_image_as(struct tmpdir *t, const struct image_spec *s, uint32_t root_pid)
{
	struct ferry_err err = {0};
	struct page_xfer *x = NULL;
	int dirfd;

	assert_int_equal(mkdirat(t->fd, s->sub, 0700), 0);
	dirfd = openat(t->fd, s->sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	check(xfer_local_open(dirfd, PID, &x, &err), &err);
	xfer_local_set_snapshot(x, s->snapshot, s->parent_snapshot);
	for (size_t i = 0; i < s->nr_runs; i++)
		add_run(x, s->runs[i].vaddr, s->runs[i].nr, s->runs[i].flags);
	for (size_t i = 0; i < s->nr_runs; i++)
		if (s->runs[i].flags & FERRY_PR_PRESENT)
			write_pages(x, s->seed, s->runs[i].vaddr, s->runs[i].nr);
	commit(x);
	xfer_destroy(x);
	write_chain_inventory(dirfd, s, root_pid);
	close(dirfd);
}

static void make_image(struct tmpdir *t, const struct image_spec *s)
{
	make_image_as(t, s, PID);
}

static int open_image(struct tmpdir *t, const char *sub, struct page_read *pr,
		      struct ferry_err *err)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/%s", t->path, sub);
	return page_read_open_local(dir, PID, pr, err);
}

static void open_image_ok(struct tmpdir *t, const char *sub, struct page_read *pr)
{
	struct ferry_err err = {0};

	check(open_image(t, sub, pr, &err), &err);
}

static const struct run_spec parent_runs[] = {
    {0x10000, 4, FERRY_PR_PRESENT}, /* data pages 0-3 */
    {0x14000, 1, FERRY_PR_ZERO},
    {0x20000, 2, FERRY_PR_PRESENT}, /* data pages 4-5 */
};

static const struct run_spec child_runs[] = {
    {0x10000, 1, FERRY_PR_PRESENT},					/* data page 0 */
    {0x11000, 3, FERRY_PR_IN_PARENT},					/* parent pages 1-3 */
    {0x14000, 1, FERRY_PR_ZERO},      {0x20000, 2, FERRY_PR_IN_PARENT}, /* parent pages 4-5 */
    {0x30000, 1, FERRY_PR_PRESENT},					/* data page 1 */
};

static void make_parent_and_child(struct tmpdir *t)
{
	make_image(t, &IMAGE("parent", SNAP_PARENT, NULL, NULL, 1, parent_runs));
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_PARENT, "../parent", 2, child_runs));
}

static void chain_opens_with_one_layer_per_image(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_read pr;

	make_parent_and_child(t);
	open_image_ok(t, "child", &pr);
	assert_int_equal(pr.nr_layers, 2);
	assert_non_null(strstr(pr.layers[0].path, "child/pages-4242.img"));
	assert_non_null(strstr(pr.layers[1].path, "parent/pages-4242.img"));
	assert_int_equal(page_read_nr_runs(&pr), ARRAY_SIZE(child_runs));
	assert_int_equal(page_read_run(&pr, 1)->flags, FERRY_PR_IN_PARENT);
	check(page_read_verify(&pr, &err), &err);
	page_read_close(&pr);
}

static void holes_resolve_to_the_parents_data(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;

	make_parent_and_child(t);
	open_image_ok(t, "child", &pr);
	check(page_read_queue_all(&pr, &q, NULL, NULL, &err), &err);

	assert_int_equal(q.n, 4);
	assert_piece(&q, 0, 0x10000, 0x1000, 0, DATA(0));
	assert_piece(&q, 1, 0x11000, 0x3000, 1, DATA(1));
	assert_piece(&q, 2, 0x20000, 0x2000, 1, DATA(4));
	assert_piece(&q, 3, 0x30000, 0x1000, 0, DATA(1));
	prq_free(&q);
	page_read_close(&pr);
}

static bool skip_in_parent(void *ctx, const PageRun *run)
{
	(*(int *)ctx)++;
	return run->flags & FERRY_PR_IN_PARENT;
}

static void queue_all_leaves_out_skipped_runs(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;
	int asked = 0;

	make_parent_and_child(t);
	open_image_ok(t, "child", &pr);
	check(page_read_queue_all(&pr, &q, skip_in_parent, &asked, &err), &err);
	assert_int_equal(asked, ARRAY_SIZE(child_runs));
	assert_int_equal(q.n, 2);
	assert_piece(&q, 0, 0x10000, 0x1000, 0, DATA(0));
	assert_piece(&q, 1, 0x30000, 0x1000, 0, DATA(1));
	prq_free(&q);
	page_read_close(&pr);
}

static void queue_range_takes_only_the_part_inside(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;

	make_parent_and_child(t);
	open_image_ok(t, "child", &pr);
	check(page_read_queue_range(&pr, 0x12000, 0x21000, &q, &err), &err);
	assert_int_equal(q.n, 2);
	assert_piece(&q, 0, 0x12000, 0x2000, 1, DATA(2));
	assert_piece(&q, 1, 0x20000, 0x1000, 1, DATA(4));
	prq_free(&q);

	/* a range of the child's own pages, then one of no pages at all */
	check(page_read_queue_range(&pr, 0x30000, 0x31000, &q, &err), &err);
	assert_int_equal(q.n, 1);
	assert_piece(&q, 0, 0x30000, 0x1000, 0, DATA(1));
	prq_free(&q);
	check(page_read_queue_range(&pr, 0x40000, 0x50000, &q, &err), &err);
	assert_int_equal(q.n, 0);
	prq_free(&q);
	page_read_close(&pr);
}

static void read_pages_takes_holes_from_the_parent_and_zeros_elsewhere(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_read pr;
	uint8_t *buf = malloc(6 * PAGE_SIZE);

	assert_non_null(buf);
	make_parent_and_child(t);
	open_image_ok(t, "child", &pr);

	memset(buf, 0xaa, 6 * PAGE_SIZE);
	check(page_read_pages(&pr, 0x10000, 6 * PAGE_SIZE, buf, &err), &err);
	assert_page_from(buf, 2, 0x10000);
	for (uint64_t i = 1; i < 4; i++)
		assert_page_from(buf + i * PAGE_SIZE, 1, 0x10000 + i * PAGE_SIZE);
	assert_zero_page(buf + 4 * PAGE_SIZE, 0x14000); /* zero run */
	assert_zero_page(buf + 5 * PAGE_SIZE, 0x15000); /* no run */

	check(page_read_pages(&pr, 0x21000, 2 * PAGE_SIZE, buf, &err), &err);
	assert_page_from(buf, 1, 0x21000);
	assert_zero_page(buf + PAGE_SIZE, 0x22000);

	check(page_read_pages(&pr, 0x30000, PAGE_SIZE, buf, &err), &err);
	assert_page_from(buf, 2, 0x30000);
	page_read_close(&pr);
	free(buf);
}

static void holes_resolve_through_a_grandparent(void **state)
{
	static const struct run_spec grand[] = {{0x10000, 4, FERRY_PR_PRESENT}};
	static const struct run_spec parent[] = {
	    {0x10000, 2, FERRY_PR_IN_PARENT},
	    {0x12000, 2, FERRY_PR_PRESENT},
	};
	static const struct run_spec child[] = {
	    {0x10000, 1, FERRY_PR_PRESENT},
	    {0x11000, 3, FERRY_PR_IN_PARENT},
	};
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;
	uint8_t buf[4 * PAGE_SIZE];

	make_image(t, &IMAGE("grand", SNAP_GRAND, NULL, NULL, 1, grand));
	make_image(t, &IMAGE("parent", SNAP_PARENT, SNAP_GRAND, "../grand", 2, parent));
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_PARENT, "../parent", 3, child));
	open_image_ok(t, "child", &pr);
	assert_int_equal(pr.nr_layers, 3);

	check(page_read_queue_all(&pr, &q, NULL, NULL, &err), &err);
	assert_int_equal(q.n, 3);
	assert_piece(&q, 0, 0x10000, 0x1000, 0, DATA(0));
	assert_piece(&q, 1, 0x11000, 0x1000, 2, DATA(1));
	assert_piece(&q, 2, 0x12000, 0x2000, 1, DATA(0));
	prq_free(&q);

	check(page_read_pages(&pr, 0x10000, sizeof(buf), buf, &err), &err);
	assert_page_from(buf, 3, 0x10000);
	assert_page_from(buf + PAGE_SIZE, 1, 0x11000);
	assert_page_from(buf + 2 * PAGE_SIZE, 2, 0x12000);
	assert_page_from(buf + 3 * PAGE_SIZE, 2, 0x13000);
	check(page_read_verify(&pr, &err), &err);
	page_read_close(&pr);
}

static void hole_the_parent_lacks_is_an_error_naming_the_range(void **state)
{
	static const struct run_spec parent[] = {{0x10000, 2, FERRY_PR_PRESENT}};
	static const struct run_spec child[] = {{0x10000, 4, FERRY_PR_IN_PARENT}};
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;
	uint8_t buf[4 * PAGE_SIZE];

	make_image(t, &IMAGE("parent", SNAP_PARENT, NULL, NULL, 1, parent));
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_PARENT, "../parent", 2, child));
	open_image_ok(t, "child", &pr);

	assert_int_equal(page_read_queue_all(&pr, &q, NULL, NULL, &err), -EINVAL);
	assert_msg_has(&err, "0x12000-0x14000");
	assert_msg_has(&err, "parent/pages-4242.img");
	prq_free(&q);

	ferry_err_clear(&err);
	assert_int_equal(page_read_queue_range(&pr, 0x11000, 0x13000, &q, &err), -EINVAL);
	assert_msg_has(&err, "0x12000-0x13000");
	prq_free(&q);

	ferry_err_clear(&err);
	assert_int_equal(page_read_pages(&pr, 0x10000, sizeof(buf), buf, &err), -EINVAL);
	assert_msg_has(&err, "0x12000-0x14000");
	page_read_close(&pr);
}

static void hole_between_parent_runs_names_only_the_missing_pages(void **state)
{
	static const struct run_spec parent[] = {
	    {0x10000, 1, FERRY_PR_PRESENT},
	    {0x12000, 2, FERRY_PR_PRESENT},
	};
	static const struct run_spec child[] = {{0x10000, 4, FERRY_PR_IN_PARENT}};
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;
	int r;

	make_image(t, &IMAGE("parent", SNAP_PARENT, NULL, NULL, 1, parent));
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_PARENT, "../parent", 2, child));
	open_image_ok(t, "child", &pr);

	/* the parent holds 0x12000-0x14000; only 0x11000-0x12000 is missing */
	r = page_read_queue_all(&pr, &q, NULL, NULL, &err);
	prq_free(&q);
	page_read_close(&pr);
	assert_int_equal(r, -EINVAL);
	assert_msg_has(&err, "0x11000-0x12000");
}

static void hole_without_a_parent_is_an_error(void **state)
{
	static const struct run_spec only[] = {
	    {0x10000, 1, FERRY_PR_PRESENT},
	    {0x11000, 2, FERRY_PR_IN_PARENT},
	};
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct pr_queue q = {0};
	struct page_read pr;

	make_image(t, &IMAGE("only", SNAP_CHILD, NULL, NULL, 1, only));
	open_image_ok(t, "only", &pr);
	assert_int_equal(pr.nr_layers, 1);
	assert_int_equal(page_read_queue_all(&pr, &q, NULL, NULL, &err), -EINVAL);
	assert_msg_has(&err, "0x11000-0x13000");
	assert_msg_has(&err, "no parent");
	prq_free(&q);
	page_read_close(&pr);
}

static void child_of_another_parent_snapshot_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_read pr;

	make_image(t, &IMAGE("parent", SNAP_PARENT, NULL, NULL, 1, parent_runs));
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_OTHER, "../parent", 2, child_runs));
	assert_int_equal(open_image(t, "child", &pr, &err), -EINVAL);
	assert_msg_has(&err, "pages of pid 4242");
	assert_msg_has(&err, SNAP_OTHER);
	assert_msg_has(&err, SNAP_PARENT);
	page_read_close(&pr);
}

static void parent_holding_another_process_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	struct page_read pr;

	make_image_as(t, &IMAGE("parent", SNAP_PARENT, NULL, NULL, 1, parent_runs), 999);
	make_image(t, &IMAGE("child", SNAP_CHILD, SNAP_PARENT, "../parent", 2, child_runs));
	assert_int_equal(open_image(t, "child", &pr, &err), -EINVAL);
	assert_msg_has(&err, "another process");
	page_read_close(&pr);
}

/* Rewrite the first run's data offset in sub's pagemap. */
static void move_first_run(struct tmpdir *t, const char *sub, uint64_t off)
{
	struct ferry_err err = {0};
	Pagemap *pm;
	int dirfd = openat(t->fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dirfd >= 0);
	pm = read_pagemap(dirfd, "pagemap");
	assert_true(pm->n_runs > 0 && pm->runs[0]->has_off);
	pm->runs[0]->off = off;
	check(img_write(dirfd, "pagemap-4242.img", IMG_PAGEMAP, &pm->base, &err), &err);
	free_pagemap(pm);
	close(dirfd);
}

static void assert_open_refuses_outside_run(struct tmpdir *t, const char *sub)
{
	struct ferry_err err = {0};
	struct page_read pr;
	int r = open_image(t, sub, &pr, &err);

	page_read_close(&pr); /* whether or not it opened */
	assert_int_equal(r, -EINVAL);
	assert_msg_has(&err, "outside the page data");
}

static void run_past_the_end_of_the_pages_file_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	make_image(t, &IMAGE("img", SNAP_PARENT, NULL, NULL, 1, parent_runs));
	move_first_run(t, "img", DATA(3)); /* 4 pages from page 3 of 6 */
	assert_open_refuses_outside_run(t, "img");
}

static void run_before_the_page_data_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	make_image(t, &IMAGE("img", SNAP_PARENT, NULL, NULL, 1, parent_runs));
	move_first_run(t, "img", 0); /* the header */
	assert_open_refuses_outside_run(t, "img");
}

static void run_whose_end_wraps_around_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	make_image(t, &IMAGE("img", SNAP_PARENT, NULL, NULL, 1, parent_runs));
	/* off + 4 pages overflows to a small number inside the file */
	move_first_run(t, "img", 0ULL - 4 * PAGE_SIZE + DATA(0));
	assert_open_refuses_outside_run(t, "img");
}

static void run_of_a_parent_pointing_outside_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	make_parent_and_child(t);
	move_first_run(t, "parent", DATA(5));
	assert_open_refuses_outside_run(t, "child");
}

/* ---- pagemap_covers ---- */

struct test_pagemap {
	PageRun runs[8];
	PageRun *ptrs[8];
	Pagemap pm;
};

static void build_pagemap(struct test_pagemap *tp, const struct run_spec *runs, size_t n)
{
	pagemap__init(&tp->pm);
	for (size_t i = 0; i < n; i++) {
		page_run__init(&tp->runs[i]);
		tp->runs[i].vaddr = runs[i].vaddr;
		tp->runs[i].nr_pages = runs[i].nr;
		tp->runs[i].flags = runs[i].flags;
		tp->ptrs[i] = &tp->runs[i];
	}
	tp->pm.runs = tp->ptrs;
	tp->pm.n_runs = n;
}

static const struct run_spec cover_runs[] = {
    {0x10000, 4, FERRY_PR_PRESENT},   /* 0x10000-0x14000 */
    {0x14000, 2, FERRY_PR_ZERO},      /* 0x14000-0x16000 */
    {0x16000, 2, FERRY_PR_IN_PARENT}, /* 0x16000-0x18000 */
    {0x20000, 1, FERRY_PR_PRESENT},   /* after a gap */
    {0x30000, 2, FERRY_PR_LAZY},      /* data elsewhere */
};

static void pagemap_covers_a_range_inside_runs(void **state)
{
	struct test_pagemap tp;

	build_pagemap(&tp, cover_runs, ARRAY_SIZE(cover_runs));
	assert_true(pagemap_covers(&tp.pm, 0x10000, 0x4000));
	assert_true(pagemap_covers(&tp.pm, 0x11000, 0x1000));
	assert_true(pagemap_covers(&tp.pm, 0x12000, 0x6000));
	assert_true(pagemap_covers(&tp.pm, 0x20000, 0x1000));
}

static void pagemap_covers_zero_and_in_parent_runs(void **state)
{
	struct test_pagemap tp;

	build_pagemap(&tp, cover_runs, ARRAY_SIZE(cover_runs));
	assert_true(pagemap_covers(&tp.pm, 0x14000, 0x2000));
	assert_true(pagemap_covers(&tp.pm, 0x15000, 0x2000));
	assert_true(pagemap_covers(&tp.pm, 0x16000, 0x2000));
}

static void pagemap_does_not_cover_a_partly_covered_range(void **state)
{
	struct test_pagemap tp;

	build_pagemap(&tp, cover_runs, ARRAY_SIZE(cover_runs));
	assert_false(pagemap_covers(&tp.pm, 0x17000, 0x2000));	/* runs off the end */
	assert_false(pagemap_covers(&tp.pm, 0xf000, 0x2000));	/* starts before */
	assert_false(pagemap_covers(&tp.pm, 0x20000, 0x2000));	/* last data run */
	assert_false(pagemap_covers(&tp.pm, 0x100000, 0x1000)); /* after every run */
}

static void pagemap_does_not_cover_gaps(void **state)
{
	struct test_pagemap tp;

	build_pagemap(&tp, cover_runs, ARRAY_SIZE(cover_runs));
	assert_false(pagemap_covers(&tp.pm, 0x10000, 0x11000)); /* across 0x18000-0x20000 */
	assert_false(pagemap_covers(&tp.pm, 0x18000, 0x1000));	/* inside the gap */
	assert_false(pagemap_covers(&tp.pm, 0x30000, 0x1000));	/* lazy run: data elsewhere */
}

static void empty_pagemap_covers_nothing(void **state)
{
	struct test_pagemap tp;

	build_pagemap(&tp, cover_runs, 0);
	assert_false(pagemap_covers(&tp.pm, 0x10000, 0x1000));
}


int main(void)
{
	const struct CMUnitTest tests[] = {
	    TMP_TEST(adjacent_runs_without_data_merge),
	    TMP_TEST(adjacent_present_runs_with_contiguous_data_merge),
	    TMP_TEST(runs_apart_in_address_do_not_merge),
	    TMP_TEST(adjacent_runs_of_different_kinds_do_not_merge),
	    TMP_TEST(batch_announced_before_its_data_gets_the_right_offsets),
	    TMP_TEST(chunk_checksums_cover_exactly_the_data),
	    TMP_TEST(landed_data_becomes_one_chunk_when_sealed),
	    TMP_TEST(landed_data_is_bounded_and_must_be_sealed),
	    TMP_TEST(writing_more_data_than_announced_fails),
	    TMP_TEST(commit_with_data_missing_fails),
	    TMP_TEST(runs_only_sink_writes_sent_pagemap_and_no_pages_file),
	    TMP_TEST(runs_only_sink_still_refuses_missing_data),
	    TMP_TEST(snapshot_ids_land_in_the_pagemap),
	    cmocka_unit_test(prq_merges_pieces_contiguous_in_address_and_offset),
	    cmocka_unit_test(prq_keeps_apart_pieces_not_contiguous_in_both),
	    cmocka_unit_test(prq_sync_batches_are_file_contiguous_in_layer_offset_order),
	    cmocka_unit_test(prq_sync_batches_hold_at_most_max_iov),
	    cmocka_unit_test(prq_sync_splits_a_piece_larger_than_one_gib),
	    cmocka_unit_test(prq_sync_batches_stay_within_one_gib),
	    cmocka_unit_test(prq_sync_passes_on_the_issuers_error),
	    TMP_TEST(chain_opens_with_one_layer_per_image),
	    TMP_TEST(holes_resolve_to_the_parents_data),
	    TMP_TEST(queue_all_leaves_out_skipped_runs),
	    TMP_TEST(queue_range_takes_only_the_part_inside),
	    TMP_TEST(read_pages_takes_holes_from_the_parent_and_zeros_elsewhere),
	    TMP_TEST(holes_resolve_through_a_grandparent),
	    TMP_TEST(hole_the_parent_lacks_is_an_error_naming_the_range),
	    TMP_TEST(hole_between_parent_runs_names_only_the_missing_pages),
	    TMP_TEST(hole_without_a_parent_is_an_error),
	    TMP_TEST(child_of_another_parent_snapshot_is_rejected),
	    TMP_TEST(parent_holding_another_process_is_rejected),
	    TMP_TEST(run_past_the_end_of_the_pages_file_is_rejected),
	    TMP_TEST(run_before_the_page_data_is_rejected),
	    TMP_TEST(run_whose_end_wraps_around_is_rejected),
	    TMP_TEST(run_of_a_parent_pointing_outside_is_rejected),
	    cmocka_unit_test(pagemap_covers_a_range_inside_runs),
	    cmocka_unit_test(pagemap_covers_zero_and_in_parent_runs),
	    cmocka_unit_test(pagemap_does_not_cover_a_partly_covered_range),
	    cmocka_unit_test(pagemap_does_not_cover_gaps),
	    cmocka_unit_test(empty_pagemap_covers_nothing),
	};

	return cmocka_run_group_tests_name("pagerun", tests, NULL, NULL);
}
