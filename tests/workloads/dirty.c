/*
 * dirty: a process whose memory changes in known steps, for pre-copy rounds.
 *
 *   dirty OUTFILE [MIB [S_MIB]]
 *
 * Regions (every page p of a region holds the wl_fill pattern of
 * seed(tag, base + p, gen), gen being the step that last wrote it, 0 for setup):
 *   A   MIB MiB (16; at least 4) private anonymous, every page written at
 *       setup. MADV_NOHUGEPAGE, so that "written" means one 4 KiB page.
 *   F   a private mapping of a 16-page temp file; pages 1, 4 and 9 written
 *       through the mapping (copy-on-write), the rest follow the file.
 *   S   8 pages (or S_MIB MiB) shared anonymous: shared memory is saved whole
 *       by every round, so a big S makes rounds that last.
 *   M   16 pages of a memfd mapped shared (the memfd is closed). Pages 0-7
 *       are ours; pages 8-15 are left to others (a test writes them through
 *       /proc/PID/map_files and checks them itself): never checked here.
 * Before `ready` it appends "# A 0xADDR PAGES", "# F ...", "# S ..." and
 * "# M 0xADDR PAGES FIRST_EXTERNAL".
 *
 * On SIGUSR1 it performs the next step k (1, 2, ...). With c = (k-1)/8 (the
 * cycle, special actions only while c < 4) and s = (k-1)%8 + 1 (the phase):
 *   s=2  read() from a temp file into 4 pages of A (the kernel writes them)
 *   s=3  maps a new 64-page region N far below A and fills it
 *        ("# step k new 0xADDR 64")
 *   s=4  munmaps A pages [P/4 + 64c, +16)           ("# step k unmapped I-J")
 *   s=5  mremaps A pages [P/2 + 64c, +8) to a new address far below A
 *        ("# step k moved I-J to 0xADDR"); the pages keep their contents
 *   s=6  MADV_DONTNEED on A pages [3P/4 + 64c, +8)  ("# step k zeroed I-J")
 *   s=7  writes 2 pages of S, 1 page of M, copy-on-writes 1 page of F
 *   s=8  writes again the first page zeroed in phase 6 of this cycle
 * Every step also writes 8 scattered pages and 3 adjacent ones of A (skipping
 * unmapped ones). Then "# step k written I,J,..." lists the indexes of A whose
 * contents the step wrote (by the CPU or by the kernel), and "# step k done".
 * New regions (N, and R for moved pages) are never written after they appear.
 *
 * On SIGUSR2 every page of every region is checked against the model: pattern
 * of its generation, zero after MADV_DONTNEED, unmapped after munmap and
 * mremap (mincore says ENOMEM); the file behind F is unchanged; no fd leaked;
 * then writes still work. The first mismatching page of each region is named.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wl.h"

#define CYCLE 8
#define SPECIAL_CYCLES 4
#define F_PAGES 16
#define S_PAGES_DEFAULT 8
#define M_PAGES 16
#define M_OURS 8
#define N_PAGES 64
#define R_PAGES 8
#define UNMAP_PAGES 16
#define ZERO_PAGES 8
#define READ_PAGES 4
#define SCATTER_PAGES 8
#define ADJACENT_PAGES 3
#define MAX_WRITTEN 64
#define MAX_REGIONS 16

enum page_state {
	PAGE_DATA,     /* the pattern of its generation */
	PAGE_ZERO,     /* MADV_DONTNEED'd: reads as zero */
	PAGE_GONE,     /* unmapped */
	PAGE_EXTERNAL, /* written by others: not ours to check */
};

struct region {
	char name[8];
	uint8_t *addr;
	size_t pages;
	uint64_t tag;	/* seed of the pattern, with base + page and gen */
	size_t base;	/* index of page 0 in the pattern (moved pages keep A's) */
	uint32_t *gen;	/* per page: the step that wrote it last */
	uint8_t *state; /* per page: enum page_state */
	int file_fd;	/* F: the file behind it (its pages must keep gen 0) */
};

static struct region regions[MAX_REGIONS];
static size_t nregions;
static struct region *A, *F, *S, *M;
static size_t ps;

/* The extra model storage of regions made in steps (no malloc after ready). */
static uint32_t small_gen[MAX_REGIONS][N_PAGES];
static uint8_t small_state[MAX_REGIONS][N_PAGES];

static int read_src_fd = -1;
static uint8_t page_buf[65536];


static uint64_t seed_of(const struct region *r, size_t page, uint32_t gen)
{
	return (r->tag << 56) ^ ((uint64_t)(r->base + page) << 20) ^ gen;
}

static uint8_t *page_addr(const struct region *r, size_t page)
{
	return r->addr + page * ps;
}

static struct region *add_region(const char *name, uint8_t *addr, size_t pages, uint64_t tag,
				 size_t base)
{
	struct region *r;

	if (nregions >= MAX_REGIONS)
		wl_setup_fail("too many regions");
	r = &regions[nregions];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->addr = addr;
	r->pages = pages;
	r->tag = tag;
	r->base = base;
	r->file_fd = -1;
	if (pages <= N_PAGES) {
		r->gen = small_gen[nregions];
		r->state = small_state[nregions];
	} else {
		r->gen = calloc(pages, sizeof(*r->gen));
		r->state = calloc(pages, sizeof(*r->state));
		if (!r->gen || !r->state)
			wl_setup_fail("cannot allocate the model of %zu pages", pages);
	}
	nregions++;
	return r;
}

static void write_page(struct region *r, size_t page, uint32_t gen)
{
	wl_fill(page_addr(r, page), ps, seed_of(r, page, gen));
	r->gen[page] = gen;
	r->state[page] = PAGE_DATA;
}

static void fill_region(struct region *r, uint32_t gen)
{
	for (size_t p = 0; p < r->pages; p++)
		write_page(r, p, gen);
}

static void *map_or_die(void *hint, size_t len, int prot, int flags, int fd, const char *what)
{
	void *p = mmap(hint, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		wl_setup_fail("mmap %s: %s", what, strerror(errno));
	return p;
}

/*
 * A free spot for len bytes, far below A (so that no new region ever lands in
 * a hole punched into A), held by a PROT_NONE placeholder to map over.
 */
static uint8_t *far_spot(size_t len)
{
	static size_t slot;

	for (; slot < 64; slot++) {
		uintptr_t hint = (uintptr_t)A->addr - (slot + 1) * (1ULL << 30);
		void *p = mmap((void *)hint, len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		if (p == MAP_FAILED)
			continue;
		if ((uintptr_t)p != hint) {
			munmap(p, len);
			continue;
		}
		slot++;
		return p;
	}
	return NULL;
}

/* ---------------------------------------------------------------- steps */

struct step {
	uint32_t k;
	size_t written[MAX_WRITTEN];
	size_t nwritten;
};

static void note_written(struct step *st, size_t idx)
{
	for (size_t i = 0; i < st->nwritten; i++)
		if (st->written[i] == idx)
			return;
	if (st->nwritten < MAX_WRITTEN)
		st->written[st->nwritten++] = idx;
}

static bool in_step(const struct step *st, size_t idx)
{
	for (size_t i = 0; i < st->nwritten; i++)
		if (st->written[i] == idx)
			return true;
	return false;
}

/* The first mapped page of A at or after idx (cyclically) not written in this step. */
static size_t next_mapped(const struct step *st, size_t idx)
{
	for (size_t n = 0; n < A->pages; n++) {
		size_t i = (idx + n) % A->pages;

		if (A->state[i] != PAGE_GONE && !in_step(st, i))
			return i;
	}
	wl_setup_fail("A has no mapped page left");
}

static void write_a(struct step *st, size_t idx)
{
	write_page(A, idx, st->k);
	note_written(st, idx);
}

/* The kernel writes the pages: read() from a file holding their new contents. */
static void step_read_into_a(struct step *st)
{
	for (size_t j = 0; j < READ_PAGES; j++) {
		size_t idx = next_mapped(st, (st->k * 53 + A->pages / 8 + j * 97) % A->pages);
		ssize_t n;

		wl_fill(page_buf, ps, seed_of(A, idx, st->k));
		if (wl_pwrite_all(read_src_fd, page_buf, ps, 0) != (ssize_t)ps)
			wl_setup_fail("step %u: write the read() source: %s", st->k,
				      strerror(errno));
		if (lseek(read_src_fd, 0, SEEK_SET) < 0)
			wl_setup_fail("step %u: lseek: %s", st->k, strerror(errno));
		n = wl_read_all(read_src_fd, page_addr(A, idx), ps);
		if (n != (ssize_t)ps)
			wl_setup_fail("step %u: read() into A page %zu: %s", st->k, idx,
				      n < 0 ? strerror(errno) : "short read");
		A->gen[idx] = st->k;
		A->state[idx] = PAGE_DATA;
		note_written(st, idx);
	}
}

static void step_new_region(struct step *st, unsigned cycle)
{
	char name[8];
	uint8_t *p = far_spot(N_PAGES * ps);
	struct region *r;

	if (!p)
		wl_setup_fail("step %u: no free spot for a new region", st->k);
	p = map_or_die(p, N_PAGES * ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, "new region");
	snprintf(name, sizeof(name), "N%u", cycle);
	r = add_region(name, p, N_PAGES, 'N' + cycle, 0);
	fill_region(r, st->k);
	wl_say("step %u new %p %d", st->k, (void *)p, N_PAGES);
}

static void forget_a_range(size_t first, size_t count)
{
	for (size_t i = first; i < first + count; i++)
		A->state[i] = PAGE_GONE;
}

static void step_unmap(struct step *st, unsigned cycle)
{
	size_t first = A->pages / 4 + 64 * cycle;

	if (munmap(page_addr(A, first), UNMAP_PAGES * ps) < 0)
		wl_setup_fail("step %u: munmap: %s", st->k, strerror(errno));
	forget_a_range(first, UNMAP_PAGES);
	wl_say("step %u unmapped %zu-%zu", st->k, first, first + UNMAP_PAGES - 1);
}

static void step_move(struct step *st, unsigned cycle)
{
	size_t first = A->pages / 2 + 64 * cycle;
	uint8_t *to = far_spot(R_PAGES * ps);
	struct region *r;
	char name[8];
	void *p;

	if (!to)
		wl_setup_fail("step %u: no free spot to move pages to", st->k);
	p = mremap(page_addr(A, first), R_PAGES * ps, R_PAGES * ps, MREMAP_MAYMOVE | MREMAP_FIXED,
		   to);
	if (p != to)
		wl_setup_fail("step %u: mremap: %s", st->k, strerror(errno));
	snprintf(name, sizeof(name), "R%u", cycle);
	r = add_region(name, to, R_PAGES, A->tag, first);
	for (size_t j = 0; j < R_PAGES; j++) {
		r->gen[j] = A->gen[first + j];
		r->state[j] = A->state[first + j];
	}
	forget_a_range(first, R_PAGES);
	wl_say("step %u moved %zu-%zu to %p", st->k, first, first + R_PAGES - 1, (void *)to);
}

static size_t zeroed_first(unsigned cycle)
{
	return 3 * A->pages / 4 + 64 * cycle;
}

static void step_zero(struct step *st, unsigned cycle)
{
	size_t first = zeroed_first(cycle);

	if (madvise(page_addr(A, first), ZERO_PAGES * ps, MADV_DONTNEED) < 0)
		wl_setup_fail("step %u: madvise(DONTNEED): %s", st->k, strerror(errno));
	for (size_t i = first; i < first + ZERO_PAGES; i++) {
		A->state[i] = PAGE_ZERO;
		A->gen[i] = 0;
	}
	wl_say("step %u zeroed %zu-%zu", st->k, first, first + ZERO_PAGES - 1);
}

static void step_shared(struct step *st)
{
	write_page(S, st->k % S->pages, st->k);
	write_page(S, (st->k + 3) % S->pages, st->k);
	write_page(M, st->k % M_OURS, st->k);
	write_page(F, (st->k * 5) % F_PAGES, st->k);
}

/* Scattered and adjacent writes: the other steps must not be the only ones. */
static void step_plain_writes(struct step *st)
{
	size_t adj;

	for (size_t j = 0; j < SCATTER_PAGES; j++) {
		size_t want =
		    ((size_t)st->k * 2654435761u + j * (A->pages / SCATTER_PAGES + 13)) % A->pages;

		write_a(st, next_mapped(st, want));
	}
	adj = next_mapped(st, ((size_t)st->k * 7 + 5) % (A->pages - ADJACENT_PAGES));
	for (size_t j = 0; j < ADJACENT_PAGES && adj + j < A->pages; j++)
		if (A->state[adj + j] != PAGE_GONE)
			write_a(st, adj + j);
}

static void say_written(const struct step *st)
{
	char line[900];
	size_t used = 0;

	line[0] = 0;
	for (size_t i = 0; i < st->nwritten && used + 24 < sizeof(line); i++)
		used += snprintf(line + used, sizeof(line) - used, "%s%zu", i ? "," : "",
				 st->written[i]);
	wl_say("step %u written %s", st->k, line);
}

static void do_step(uint32_t k)
{
	struct step st = {.k = k};
	unsigned cycle = (k - 1) / CYCLE, phase = (k - 1) % CYCLE + 1;

	if (cycle < SPECIAL_CYCLES) {
		switch (phase) {
		case 2:
			step_read_into_a(&st);
			break;
		case 3:
			step_new_region(&st, cycle);
			break;
		case 4:
			step_unmap(&st, cycle);
			break;
		case 5:
			step_move(&st, cycle);
			break;
		case 6:
			step_zero(&st, cycle);
			break;
		case 7:
			step_shared(&st);
			break;
		case 8:
			write_a(&st, zeroed_first(cycle));
			break;
		}
	}
	step_plain_writes(&st);
	say_written(&st);
	wl_say("step %u done", k);
}

/* ---------------------------------------------------------------- checks */

static bool page_mapped(const void *addr)
{
	unsigned char vec;

	return mincore((void *)addr, ps, &vec) == 0 || errno != ENOMEM;
}

/* Names the first page of r that is not what the model says; true if none. */
static bool check_region(const struct region *r)
{
	for (size_t p = 0; p < r->pages; p++) {
		const uint8_t *a = page_addr(r, p);
		ssize_t bad;

		switch (r->state[p]) {
		case PAGE_EXTERNAL:
			continue;
		case PAGE_GONE:
			if (!wl_expect(!page_mapped(a), "%s page %zu (%p) should be unmapped",
				       r->name, p, (void *)a))
				return false;
			continue;
		case PAGE_ZERO:
			if (!wl_expect(page_mapped(a), "%s page %zu (%p) is unmapped", r->name, p,
				       (void *)a))
				return false;
			bad = wl_nonzero(a, ps);
			if (!wl_expect(
				bad < 0,
				"%s page %zu (%p) should be zero (MADV_DONTNEED) but byte %zd "
				"is not",
				r->name, p, (void *)a, bad))
				return false;
			continue;
		default:
			if (!wl_expect(page_mapped(a), "%s page %zu (%p) is unmapped", r->name, p,
				       (void *)a))
				return false;
			bad = wl_mismatch(a, ps, seed_of(r, p, r->gen[p]));
			if (!wl_expect(
				bad < 0,
				"%s page %zu (%p) differs from what step %u wrote, at byte %zd",
				r->name, p, (void *)a, r->gen[p], bad))
				return false;
		}
	}
	return true;
}

/* The file behind F still holds its own pattern: copy-on-write never reached it. */
static void check_file_behind_f(void)
{
	for (size_t p = 0; p < F->pages; p++) {
		ssize_t bad;

		if (!wl_expect(wl_pread_all(F->file_fd, page_buf, ps, p * ps) == (ssize_t)ps,
			       "cannot read page %zu of the file behind F: %s", p, strerror(errno)))
			return;
		bad = wl_mismatch(page_buf, ps, seed_of(F, p, 0));
		if (!wl_expect(bad < 0, "the file behind F changed: page %zu, byte %zd", p, bad))
			return;
	}
}

/* Every writable region still takes writes (restored memory is not read-only). */
static void check_writes_work(void)
{
	for (size_t i = 0; i < nregions; i++) {
		struct region *r = &regions[i];

		for (size_t p = 0; p < r->pages; p++) {
			if (r->state[p] == PAGE_GONE || r->state[p] == PAGE_EXTERNAL)
				continue;
			write_page(r, p, 0xfffffff0u + (uint32_t)i);
			wl_expect(wl_mismatch(page_addr(r, p), ps, seed_of(r, p, r->gen[p])) < 0,
				  "%s page %zu does not keep what was written after the check",
				  r->name, p);
			break;
		}
	}
}

static void check_all(uint32_t steps)
{
	wl_say("check after step %u", steps);
	wl_check_fds();
	for (size_t i = 0; i < nregions; i++)
		check_region(&regions[i]);
	check_file_behind_f();
	check_writes_work();
}

/* ---------------------------------------------------------------- setup */

static void setup_a(size_t mib)
{
	size_t pages = mib * 1024 * 1024 / ps;
	uint8_t *p = map_or_die(NULL, pages * ps, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, "A");

	if (madvise(p, pages * ps, MADV_NOHUGEPAGE) < 0)
		wl_setup_fail("madvise(NOHUGEPAGE) A: %s", strerror(errno));
	A = add_region("A", p, pages, 'A', 0);
	fill_region(A, 0);
	wl_say("A %p %zu", (void *)p, pages);
}

static void setup_f(void)
{
	char path[PATH_MAX];
	int fd = wl_temp_file(path, sizeof(path), "priv");
	struct region r = {.tag = 'F'};

	for (size_t p = 0; p < F_PAGES; p++) {
		wl_fill(page_buf, ps, seed_of(&r, p, 0));
		if (wl_pwrite_all(fd, page_buf, ps, p * ps) != (ssize_t)ps)
			wl_setup_fail("write %s: %s", path, strerror(errno));
	}
	F = add_region("F",
		       map_or_die(NULL, F_PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, "F"),
		       F_PAGES, 'F', 0);
	F->file_fd = fd;
	write_page(F, 1, 1);
	write_page(F, 4, 1);
	write_page(F, 9, 1);
	wl_say("F %p %d", (void *)F->addr, F_PAGES);
}

static void setup_shared(size_t s_pages)
{
	int fd;

	S = add_region("S",
		       map_or_die(NULL, s_pages * ps, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, "S"),
		       s_pages, 'S', 0);
	fill_region(S, 0);
	wl_say("S %p %zu", (void *)S->addr, s_pages);

	fd = memfd_create("ferry-wl-dirty", 0);
	if (fd < 0)
		wl_setup_fail("memfd_create: %s", strerror(errno));
	if (ftruncate(fd, M_PAGES * ps) < 0)
		wl_setup_fail("ftruncate memfd: %s", strerror(errno));
	M = add_region("M",
		       map_or_die(NULL, M_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, "M"),
		       M_PAGES, 'M', 0);
	close(fd);
	fill_region(M, 0);
	for (size_t p = M_OURS; p < M_PAGES; p++)
		M->state[p] = PAGE_EXTERNAL;
	wl_say("M %p %d %d", (void *)M->addr, M_PAGES, M_OURS);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	sigset_t wait;
	uint32_t steps_done = 0;
	size_t mib = 16, s_pages = S_PAGES_DEFAULT;

	wl_start(argc, argv, 0, "[MIB [S_MIB]]");
	if (argc > 2)
		mib = strtoul(argv[2], NULL, 10);
	if (mib < 4)
		wl_setup_fail("A must have at least 4 MiB");
	ps = wl_page_size();
	if (argc > 3)
		s_pages = strtoul(argv[3], NULL, 10) * 1024 * 1024 / ps;
	if (s_pages < S_PAGES_DEFAULT)
		wl_setup_fail("S must have at least %d pages", S_PAGES_DEFAULT);
	if (ps > sizeof(page_buf))
		wl_setup_fail("page size %zu is too large", ps);

	wl_catch_usr1(&wait);

	setup_a(mib);
	setup_f();
	setup_shared(s_pages);
	read_src_fd = wl_temp_file(path, sizeof(path), "read");

	wl_ready();
	/* both signals stay blocked except in sigsuspend: steps run uninterrupted */
	while (!wl_check_requested) {
		if (steps_done < (uint32_t)wl_usr1_count) {
			do_step(++steps_done);
			continue;
		}
		sigsuspend(&wait);
	}
	check_all(steps_done);
	wl_finish();
}
