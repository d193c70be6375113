/*
 * lazyw: a process for post-copy (lazy) restore, whose memory is touched in
 * every way that makes the lazy-pages daemon see a userfaultfd event.
 *
 *   lazyw OUTFILE [MIB [STEPS [hb]]]
 *
 * Holds A, MIB MiB (64; at least 16) of private anonymous memory, every page
 * written at setup with its own pattern (MADV_NOHUGEPAGE: a fault is one
 * 4 KiB page), and a linked list of 4096 small heap objects (brk heap).
 * Before `ready` it appends "# A 0xADDR PAGES".
 *
 * STEPS is a comma-separated list of step names (default "all", which stands
 * for write,fork,mremap,munmap,dontneed,read). On the first SIGUSR1 it runs them in order, each ending
 * with the line "# step NAME done" after a line "# NAME: ..." saying how
 * many of the pages it used had not arrived yet (mincore: not resident);
 * then "# script done". Later SIGUSR1s do nothing. P is the number of pages
 * of A:
 *   write     writes 8 bytes into the middle of 64 pages spread over A
 *             (stride P/64): the rest of each page must still be the pattern
 *   fork      forks a child that reads pages [P/8, P/4), checks them, writes
 *             one of them (its own copy) and reports over a pipe, then exits
 *   mremap    moves pages [P/4, P/4+P/16) far below A; reads the first half
 *             there at once, the second half only at the final check
 *   munmap    unmaps [3P/8, 3P/8+P/16); maps fresh anonymous memory over the
 *             first half of it, which must read as zero, now and at the end
 *   dontneed  MADV_DONTNEED on [P/2, P/2+P/16); reads the first quarter
 *             back as zero and writes it again; the rest is left alone and
 *             must still be zero at the final check
 *   read      reads every mapped page of A and the heap list, checking all
 *   touch     reads one byte of each of 4000 pseudo-random pages of
 *             [5P/8, P) and times the first touch of those not yet present:
 *             "# touch: N faults p50 X us p99 Y us max Z us" (then checks them)
 * With "hb" the main loop wakes every 200 us and appends "# gap N us" when
 * CLOCK_REALTIME jumped by more than 2 ms between two wakeups (the downtime
 * of a migration, as the process saw it), else it sleeps in sigsuspend.
 *
 * On SIGUSR2 every page is checked against the model (pattern, patched,
 * zero, rewritten, moved, unmapped), the heap list, the fork child's report,
 * the fds; then writes must still work.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

enum page_state {
	P_DATA,	     /* the setup pattern */
	P_PATCHED,   /* the setup pattern but word PATCH_WORD */
	P_ZERO,	     /* MADV_DONTNEED'd, untouched since */
	P_REWRITTEN, /* MADV_DONTNEED'd, then written with the pattern of gen 1 */
	P_GONE,	     /* unmapped */
	P_FRESH,     /* unmapped, then fresh anonymous memory mapped there */
};

#define PATCH_WORD 200
#define WRITE_PAGES 64
#define HEAP_NODES 4096
#define TOUCH_PAGES 4000

struct node {
	struct node *next;
	uint64_t index;
	uint64_t words[6];
};

static size_t ps, npages;
static uint8_t *A, *R;
static size_t r_first, r_pages; /* R holds A pages [r_first, r_first + r_pages) */
static uint8_t *state;
static struct node *heap_list;
static bool child_ran;
static unsigned long child_report[4]; /* checked, bad, first bad, not arrived */
static int child_status = -1;
static bool script_ran;
static uint64_t touch_ns[TOUCH_PAGES];

static uint64_t seed_of(size_t page, unsigned gen)
{
	return 0x4c617a7900000000ULL ^ ((uint64_t)page << 8) ^ gen;
}

static uint64_t patch_of(size_t page)
{
	return 0xfeedface00000000ULL | page;
}

static uint8_t *page_of(size_t page)
{
	return A + page * ps;
}

/* Where A page p is now: in R once moved there. */
static uint8_t *addr_of(size_t p)
{
	if (R && p >= r_first && p < r_first + r_pages)
		return R + (p - r_first) * ps;
	return page_of(p);
}

static bool resident(const void *addr)
{
	unsigned char v = 0;

	return mincore((void *)addr, ps, &v) == 0 && (v & 1);
}

static bool mapped(const void *addr)
{
	unsigned char v;

	return mincore((void *)addr, ps, &v) == 0 || errno != ENOMEM;
}

/*
 * The first wrong byte of the page at addr holding A page p in state st, or
 * -1 if it is right; -2 if it is unmapped and should not be, -3 the reverse.
 */
static ssize_t page_bad(const uint8_t *addr, size_t p, enum page_state st)
{
	const uint64_t *w = (const uint64_t *)addr;
	ssize_t bad = -1;

	if (st == P_GONE)
		return mapped(addr) ? -3 : -1;
	if (!mapped(addr))
		return -2;
	switch (st) {
	case P_DATA:
		return wl_mismatch(addr, ps, seed_of(p, 0));
	case P_PATCHED:
		for (size_t i = 0; i < ps / 8 && bad < 0; i++)
			if (w[i] != (i == PATCH_WORD ? patch_of(p) : wl_word(seed_of(p, 0), i)))
				bad = (ssize_t)(i * 8);
		return bad;
	case P_ZERO:
	case P_FRESH:
		return wl_nonzero(addr, ps);
	case P_REWRITTEN:
		return wl_mismatch(addr, ps, seed_of(p, 1));
	case P_GONE:
		break;
	}
	return -1;
}

static const char *const state_names[] = {"its pattern", "its pattern with the word written",
					  "zero", "its rewritten pattern", "unmapped",
					  "zero (fresh memory)"};

/* Checks A page p where it is now; names what is wrong. */
static bool check_page(size_t p, const char *where)
{
	const uint8_t *addr = addr_of(p);
	ssize_t bad = page_bad(addr, p, state[p]);

	if (bad == -1)
		return true;
	if (bad == -2)
		return wl_expect(false, "%s: page %zu (%p) is unmapped", where, p, (void *)addr);
	if (bad == -3)
		return wl_expect(false, "%s: page %zu (%p) should be unmapped", where, p,
				 (void *)addr);
	return wl_expect(false, "%s: page %zu (%p) should be %s but differs at byte %zd", where,
			 p, (void *)addr, state_names[state[p]], bad);
}

/* Checks pages [from, to) of A (or R for moved ones); returns the number that failed. */
static size_t check_range(size_t from, size_t to, const char *where)
{
	size_t failed = 0;

	for (size_t p = from; p < to; p++)
		if (!check_page(p, where) && ++failed >= 3)
			break; /* enough said */
	return failed;
}

static size_t count_absent(size_t from, size_t to)
{
	size_t n = 0;

	for (size_t p = from; p < to; p++)
		if ((state[p] == P_DATA || state[p] == P_PATCHED) && !resident(addr_of(p)))
			n++;
	return n;
}

static bool check_heap(void)
{
	size_t n = 0;

	for (struct node *x = heap_list; x; x = x->next, n++) {
		if (!wl_expect(x->index == HEAP_NODES - 1 - n, "heap: node %zu has index %llu", n,
			       (unsigned long long)x->index))
			return false;
		for (int i = 0; i < 6; i++)
			if (!wl_expect(x->words[i] == wl_word(0x4865617000ULL, x->index * 6 + i),
				       "heap: node %zu word %d differs", n, i))
				return false;
	}
	return wl_expect(n == HEAP_NODES, "heap: %zu nodes, expected %d", n, HEAP_NODES);
}

/* ---------------------------------------------------------------- steps */

static void step_write(void)
{
	size_t stride = npages / WRITE_PAGES, absent = 0;

	for (size_t i = 0; i < WRITE_PAGES; i++) {
		size_t p = 1 + i * stride;
		uint64_t *w = (uint64_t *)addr_of(p);

		if (state[p] != P_DATA && state[p] != P_PATCHED)
			continue;
		if (!resident(w))
			absent++;
		w[PATCH_WORD] = patch_of(p);
		state[p] = P_PATCHED;
	}
	wl_say("write: %zu of %d pages had not arrived", absent, WRITE_PAGES);
	for (size_t i = 0; i < WRITE_PAGES; i++)
		check_range(1 + i * stride, 2 + i * stride, "write");
}

static void step_fork(void)
{
	size_t from = npages / 8, to = npages / 4;
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0) {
		wl_expect(false, "fork: pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		wl_expect(false, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		unsigned long rep[4] = {to - from, 0, 0, 0};

		close(fds[0]);
		rep[3] = count_absent(from, to);
		for (size_t p = from; p < to; p++) {
			if (page_bad(addr_of(p), p, state[p]) != -1) {
				if (!rep[1]++)
					rep[2] = p;
			}
		}
		/* the child's own copy: the parent must not see this */
		wl_fill(addr_of(from), ps, seed_of(from, 7));
		if (wl_write_all(fds[1], rep, sizeof(rep)) != sizeof(rep))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	child_ran = true;
	if (wl_read_all(fds[0], child_report, sizeof(child_report)) != sizeof(child_report))
		wl_expect(false, "fork: the child sent no report");
	close(fds[0]);
	while (waitpid(pid, &child_status, 0) < 0 && errno == EINTR)
		;
	wl_say("fork: the child read %lu pages, %lu had not arrived, %lu differ", child_report[0],
	       child_report[3], child_report[1]);
	wl_expect(child_report[1] == 0, "fork: the child saw %lu pages differ, the first page %lu",
		  child_report[1], child_report[2]);
	wl_expect(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
		  "fork: the child ended with status %#x", child_status);
}

static void step_mremap(void)
{
	size_t absent;
	void *p;

	r_first = npages / 4;
	r_pages = npages / 16;
	absent = count_absent(r_first, r_first + r_pages);
	/* a free spot far below A, so nothing lands in A's holes */
	for (size_t gib = 1; gib < 64; gib++) {
		void *hint = A - gib * (1ULL << 30);

		R = mmap(hint, r_pages * ps, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (R == hint)
			break;
		if (R != MAP_FAILED)
			munmap(R, r_pages * ps);
		R = NULL;
	}
	if (!R) {
		wl_expect(false, "mremap: no free spot below A");
		return;
	}
	p = mremap(page_of(r_first), r_pages * ps, r_pages * ps, MREMAP_MAYMOVE | MREMAP_FIXED, R);
	if (!wl_expect(p == R, "mremap: %s", strerror(errno)))
		return;
	wl_say("mremap: moved pages %zu-%zu (%zu had not arrived) to %p", r_first,
	       r_first + r_pages - 1, absent, (void *)R);
	check_range(r_first, r_first + r_pages / 2, "mremap");
	wl_expect(!mapped(page_of(r_first)), "mremap: the old address %p is still mapped",
		  (void *)page_of(r_first));
}

static void step_munmap(void)
{
	size_t first = 3 * npages / 8, n = npages / 16, absent = count_absent(first, first + n);
	void *p;

	if (!wl_expect(munmap(page_of(first), n * ps) == 0, "munmap: %s", strerror(errno)))
		return;
	for (size_t i = first; i < first + n; i++)
		state[i] = P_GONE;
	p = mmap(page_of(first), n / 2 * ps, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (!wl_expect(p == page_of(first), "munmap: map fresh memory at %p: %s",
		       (void *)page_of(first), strerror(errno)))
		return;
	for (size_t i = first; i < first + n / 2; i++)
		state[i] = P_FRESH;
	wl_say("munmap: unmapped pages %zu-%zu (%zu had not arrived), fresh memory over %zu-%zu",
	       first, first + n - 1, absent, first, first + n / 2 - 1);
	check_range(first, first + n, "munmap");
}

static void step_dontneed(void)
{
	size_t first = npages / 2, n = npages / 16, absent = count_absent(first, first + n);

	if (!wl_expect(madvise(page_of(first), n * ps, MADV_DONTNEED) == 0,
		       "madvise(DONTNEED): %s", strerror(errno)))
		return;
	for (size_t i = first; i < first + n; i++)
		state[i] = P_ZERO;
	wl_say("dontneed: pages %zu-%zu (%zu had not arrived)", first, first + n - 1, absent);
	check_range(first, first + n / 4, "dontneed");
	for (size_t i = first; i < first + n / 4; i++) {
		wl_fill(page_of(i), ps, seed_of(i, 1));
		state[i] = P_REWRITTEN;
	}
	check_range(first, first + n / 4, "dontneed rewrite");
}

static void step_read(void)
{
	size_t absent = count_absent(0, npages), failed;

	failed = check_range(0, npages, "read");
	check_heap();
	wl_say("read: %zu pages, %zu had not arrived, %s", npages, absent,
	       failed ? "some differ" : "all exact");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void step_touch(void)
{
	size_t from = 5 * npages / 8, span = npages - from, n = 0;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	volatile uint8_t sink;

	for (size_t i = 0; i < TOUCH_PAGES; i++) {
		size_t p;
		uint64_t t0;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p = from + x % span;
		if (state[p] != P_DATA || resident(addr_of(p)))
			continue;
		t0 = wl_now_ns(CLOCK_MONOTONIC);
		sink = addr_of(p)[64];
		touch_ns[n++] = wl_now_ns(CLOCK_MONOTONIC) - t0;
		(void)sink;
	}
	qsort(touch_ns, n, sizeof(touch_ns[0]), cmp_u64);
	if (n)
		wl_say("touch: %zu faults p50 %.1f us p99 %.1f us max %.1f us", n,
		       touch_ns[n / 2] / 1e3, touch_ns[n * 99 / 100] / 1e3, touch_ns[n - 1] / 1e3);
	else
		wl_say("touch: 0 faults (every page had arrived)");
	check_range(from, npages, "touch");
}

static const struct {
	const char *name;
	void (*fn)(void);
} steps[] = {
	{"write", step_write},	 {"fork", step_fork},	{"mremap", step_mremap},
	{"munmap", step_munmap}, {"dontneed", step_dontneed}, {"read", step_read},
	{"touch", step_touch},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))
#define ALL_STEPS 6 /* "all": the first six, in this order */

static int script[16], script_len;

static void parse_steps(const char *arg)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;

		if (!strcmp(t, "all")) {
			for (int k = 0; k < ALL_STEPS && script_len < 12; k++)
				script[script_len++] = k;
			continue;
		}
		for (i = 0; i < NSTEPS && strcmp(steps[i].name, t); i++)
			;
		if (i == NSTEPS)
			wl_setup_fail("unknown step '%s'", t);
		if (script_len == (int)(sizeof(script) / sizeof(script[0])))
			wl_setup_fail("too many steps");
		script[script_len++] = (int)i;
	}
}

static void run_script(void)
{
	for (int i = 0; i < script_len; i++) {
		steps[script[i]].fn();
		wl_say("step %s done", steps[script[i]].name);
	}
	wl_say("script done");
}

/* ---------------------------------------------------------------- main */

static void setup(size_t mib)
{
	npages = mib * 1024 * 1024 / ps;
	A = mmap(NULL, npages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (A == MAP_FAILED)
		wl_setup_fail("mmap %zu MiB: %s", mib, strerror(errno));
	if (madvise(A, npages * ps, MADV_NOHUGEPAGE) < 0)
		wl_setup_fail("madvise(NOHUGEPAGE): %s", strerror(errno));
	for (size_t p = 0; p < npages; p++)
		wl_fill(page_of(p), ps, seed_of(p, 0));
	state = calloc(npages, 1);
	if (!state)
		wl_setup_fail("cannot allocate the model");
	for (uint64_t i = 0; i < HEAP_NODES; i++) {
		struct node *x = malloc(sizeof(*x));

		if (!x)
			wl_setup_fail("malloc");
		x->index = i;
		for (int w = 0; w < 6; w++)
			x->words[w] = wl_word(0x4865617000ULL, i * 6 + w);
		x->next = heap_list;
		heap_list = x;
	}
	wl_say("A %p %zu", (void *)A, npages);
}

static void check_all(void)
{
	wl_check_fds();
	check_range(0, npages, "check");
	check_heap();
	if (child_ran)
		wl_expect(child_report[1] == 0 && WIFEXITED(child_status) &&
				  WEXITSTATUS(child_status) == 0,
			  "the fork child failed (%lu pages differ, status %#x)", child_report[1],
			  child_status);
	/* writes still work, in A and in R */
	for (size_t p = 0; p < npages; p++) {
		if (state[p] == P_DATA) {
			wl_fill(page_of(p), ps, seed_of(p, 2));
			wl_expect(wl_mismatch(page_of(p), ps, seed_of(p, 2)) < 0,
				  "page %zu does not keep a write", p);
			break;
		}
	}
	if (R) {
		wl_fill(R, ps, seed_of(r_first, 2));
		wl_expect(wl_mismatch(R, ps, seed_of(r_first, 2)) < 0,
			  "the moved pages do not keep a write");
	}
}

int main(int argc, char **argv)
{
	sigset_t blocked, wait;
	size_t mib = 64;
	bool hb = false;

	wl_start(argc, argv, 0, "[MIB [STEPS [hb]]]");
	ps = wl_page_size();
	if (argc > 2)
		mib = strtoul(argv[2], NULL, 10);
	if (mib < 16)
		wl_setup_fail("A must have at least 16 MiB");
	parse_steps(argc > 3 ? argv[3] : "all");
	if (argc > 4) {
		if (strcmp(argv[4], "hb"))
			wl_setup_fail("unknown mode '%s'", argv[4]);
		hb = true;
	}

	wl_catch_usr1(&wait);

	setup(mib);
	wl_ready();
	uint64_t last = 0;
	while (!wl_check_requested) {
		if (wl_usr1_count && !script_ran) {
			script_ran = true;
			run_script();
			last = 0; /* the steps' own time is no gap */
			continue;
		}
		if (!hb) {
			sigsuspend(&wait);
			continue;
		}
		/* heartbeat: wake every 200 us, take signals in between */
		struct timespec ts = {0, 200000};
		sigset_t pending;
		uint64_t now;

		nanosleep(&ts, NULL);
		now = wl_now_ns(CLOCK_REALTIME);
		if (last && now - last > 2000000)
			wl_say("gap %llu us", (unsigned long long)(now - last) / 1000);
		last = now;
		sigpending(&pending);
		if (sigismember(&pending, SIGUSR1) || sigismember(&pending, SIGUSR2)) {
			sigprocmask(SIG_SETMASK, &wait, &blocked); /* let them in, then block again */
			sigprocmask(SIG_SETMASK, &blocked, NULL);
		}
	}
	check_all();
	wl_finish();
}
