/*
 * mem: one mapping of every kind, each with contents it can recognise.
 *
 *   mem OUTFILE
 *
 * Regions (seeds of wl_fill patterns in brackets):
 *   anon      64 MiB private anonymous. The first 4 MiB are all written; beyond
 *             that, per page (index % 8): 0-2 written [ANON^page], 3 only read
 *             (the zero page), 4 written then MADV_DONTNEED (zero again), 5-7
 *             never touched; the last 16 MiB are never touched.
 *   heap      2000 small malloc'd objects [HEAP^i], every fifth freed again;
 *             the program break is remembered.
 *   stack     a 32 KiB array local to main [STACK].
 *   priv      a private mapping of a 32-page temp file [PRIV_FILE^page]; pages
 *             with index % 4 == 0 written through the mapping [PRIV_COW^page]
 *             (copy-on-write: the file keeps its data), % 4 == 1 only read.
 *   shfile    a shared mapping of a 16-page temp file; pages 0-7 written
 *             through the mapping [SHF_MAP^page], 8-15 keep the file's data
 *             [SHF_FILE^page]. Both temp files are closed after mmap.
 *   shanon    8 pages shared anonymous, pages 0-5 written [SHANON^page].
 *   memfd     8 pages of memfd "ferry-wl" mapped shared, pages 0-5 written
 *             [MEMFD^page]; the memfd itself is closed.
 *   reserve   16 pages PROT_NONE, never touched.
 *   hidden    4 pages written [HIDDEN], then made PROT_NONE.
 *   rodata    8 pages written [RODATA], then made read-only.
 *   code      one page holding "mov $42, %eax; ret", read+exec.
 *   dontfork  4 pages [DONTFORK] with MADV_DONTFORK; dontdump: 2 pages
 *             [DONTDUMP] with MADV_DONTDUMP.
 *
 * On SIGUSR2 every region is checked: contents, permissions and names in
 * /proc/self/maps, madvise flags in smaps, that shared mappings are really
 * shared (a write through the file, or through /proc/self/map_files, shows in
 * the mapping), that untouched private file pages still follow the file, that
 * read-only memory faults on write, that the code still returns 42, and that
 * writes work where they are allowed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wl.h"

enum seed {
	ANON = 0x1000000,
	HEAP = 0x2000000,
	STACK = 0x3000000,
	PRIV_FILE = 0x4000000,
	PRIV_COW = 0x5000000,
	PRIV_NEW = 0x5800000,
	SHF_FILE = 0x6000000,
	SHF_MAP = 0x7000000,
	SHF_NEW = 0x7800000,
	SHANON = 0x8000000,
	MEMFD = 0x9000000,
	HIDDEN = 0xa000000,
	RODATA = 0xb000000,
	DONTFORK = 0xc000000,
	DONTDUMP = 0xd000000,
	LATER = 0xe000000,
};

#define ANON_SIZE (64UL << 20)
#define ANON_FULL_PAGES 1024 /* the first 4 MiB */
#define ANON_TAIL_UNTOUCHED (16UL << 20)
#define HEAP_OBJS 2000
#define STACK_WORDS 4096
#define PRIV_PAGES 32
#define SHF_PAGES 16
#define SHF_MAPPED_WRITES 8
#define SHARED_PAGES 8
#define SHARED_WRITTEN 6
#define RESERVE_PAGES 16
#define HIDDEN_PAGES 4
#define RODATA_PAGES 8
#define DONTFORK_PAGES 4
#define DONTDUMP_PAGES 2

enum anon_kind { PAGE_WRITTEN, PAGE_READ, PAGE_DROPPED, PAGE_UNTOUCHED };

static size_t ps;
static uint8_t *anon;
static void *heap_obj[HEAP_OBJS];
static size_t heap_len[HEAP_OBJS];
static void *heap_brk;
static uint8_t *priv, *shfile, *shanon, *memfd_map, *reserve, *hidden, *rodata, *code;
static uint8_t *dontfork, *dontdump;
static char priv_path[PATH_MAX], shfile_path[PATH_MAX];
static char shanon_name[PATH_MAX], memfd_name[PATH_MAX];

static enum anon_kind anon_kind(size_t page)
{
	if (page < ANON_FULL_PAGES)
		return PAGE_WRITTEN;
	if (page >= (ANON_SIZE - ANON_TAIL_UNTOUCHED) / ps)
		return PAGE_UNTOUCHED;
	switch (page % 8) {
	case 0:
	case 1:
	case 2:
		return PAGE_WRITTEN;
	case 3:
		return PAGE_READ;
	case 4:
		return PAGE_DROPPED;
	default:
		return PAGE_UNTOUCHED;
	}
}

static uint8_t *map_or_die(size_t len, int prot, int flags, int fd, const char *what)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		wl_setup_fail("mmap %s: %s", what, strerror(errno));
	return p;
}

static void fill_pages(uint8_t *base, size_t first, size_t count, uint64_t seed)
{
	for (size_t p = first; p < first + count; p++)
		wl_fill(base + p * ps, ps, seed ^ p);
}

static void setup_anon(void)
{
	volatile uint8_t sink = 0;

	anon =
	    map_or_die(ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, "anon");
	for (size_t p = 0; p < ANON_SIZE / ps; p++) {
		switch (anon_kind(p)) {
		case PAGE_WRITTEN:
			fill_pages(anon, p, 1, ANON);
			break;
		case PAGE_READ:
			sink += anon[p * ps];
			break;
		case PAGE_DROPPED:
			fill_pages(anon, p, 1, ANON);
			if (madvise(anon + p * ps, ps, MADV_DONTNEED))
				wl_setup_fail("madvise DONTNEED: %s", strerror(errno));
			break;
		case PAGE_UNTOUCHED:
			break;
		}
	}
	(void)sink;
}

static void setup_heap(void)
{
	for (size_t i = 0; i < HEAP_OBJS; i++) {
		heap_len[i] = 16 + (i * 37) % 500;
		heap_obj[i] = malloc(heap_len[i]);
		if (!heap_obj[i])
			wl_setup_fail("malloc");
		wl_fill(heap_obj[i], heap_len[i], HEAP ^ i);
	}
	for (size_t i = 0; i < HEAP_OBJS; i += 5) {
		free(heap_obj[i]);
		heap_obj[i] = NULL;
	}
}

static __attribute__((noinline)) void fill_stack(uint64_t *words, size_t n)
{
	wl_fill(words, n * sizeof(*words), STACK);
}

/* A temp file of pages pages of pattern seed^page, mapped with flags, then closed. */
static uint8_t *map_temp_file(char *path, const char *tag, size_t pages, uint64_t seed, int flags)
{
	uint8_t *page_buf = malloc(ps), *map;
	int fd = wl_temp_file(path, PATH_MAX, tag);

	if (!page_buf)
		wl_setup_fail("malloc");
	for (size_t p = 0; p < pages; p++) {
		wl_fill(page_buf, ps, seed ^ p);
		if (wl_write_all(fd, page_buf, ps) < 0)
			wl_setup_fail("write %s: %s", path, strerror(errno));
	}
	free(page_buf);
	map = map_or_die(pages * ps, PROT_READ | PROT_WRITE, flags, fd, tag);
	close(fd);
	return map;
}

static void setup_files(void)
{
	volatile uint8_t sink = 0;

	priv = map_temp_file(priv_path, "priv", PRIV_PAGES, PRIV_FILE, MAP_PRIVATE);
	for (size_t p = 0; p < PRIV_PAGES; p++) {
		if (p % 4 == 0)
			fill_pages(priv, p, 1, PRIV_COW);
		else if (p % 4 == 1)
			sink += priv[p * ps + 5];
	}
	(void)sink;

	shfile = map_temp_file(shfile_path, "shared", SHF_PAGES, SHF_FILE, MAP_SHARED);
	fill_pages(shfile, 0, SHF_MAPPED_WRITES, SHF_MAP);
}

static void setup_shared(void)
{
	int fd;

	shanon = map_or_die(SHARED_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, "shared anon");
	fill_pages(shanon, 0, SHARED_WRITTEN, SHANON);
	if (!wl_mapping(shanon, NULL, NULL, NULL, shanon_name, sizeof(shanon_name)))
		wl_setup_fail("shared anon not in maps");

	fd = memfd_create("ferry-wl", 0);
	if (fd < 0)
		wl_setup_fail("memfd_create: %s", strerror(errno));
	if (ftruncate(fd, SHARED_PAGES * ps))
		wl_setup_fail("ftruncate memfd: %s", strerror(errno));
	memfd_map = map_or_die(SHARED_PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, "memfd");
	close(fd);
	fill_pages(memfd_map, 0, SHARED_WRITTEN, MEMFD);
	if (!wl_mapping(memfd_map, NULL, NULL, NULL, memfd_name, sizeof(memfd_name)))
		wl_setup_fail("memfd not in maps");
}

static int call_code(void)
{
	int (*fn)(void) = (int (*)(void))(uintptr_t)code;

	return fn();
}

static void setup_protections(void)
{
	static const uint8_t ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
	int rw = PROT_READ | PROT_WRITE, anon_priv = MAP_PRIVATE | MAP_ANONYMOUS;

	reserve = map_or_die(RESERVE_PAGES * ps, PROT_NONE, anon_priv, -1, "reserve");

	hidden = map_or_die(HIDDEN_PAGES * ps, rw, anon_priv, -1, "hidden");
	wl_fill(hidden, HIDDEN_PAGES * ps, HIDDEN);
	if (mprotect(hidden, HIDDEN_PAGES * ps, PROT_NONE))
		wl_setup_fail("mprotect hidden: %s", strerror(errno));

	rodata = map_or_die(RODATA_PAGES * ps, rw, anon_priv, -1, "rodata");
	wl_fill(rodata, RODATA_PAGES * ps, RODATA);
	if (mprotect(rodata, RODATA_PAGES * ps, PROT_READ))
		wl_setup_fail("mprotect rodata: %s", strerror(errno));

	code = map_or_die(ps, rw, anon_priv, -1, "code");
	memcpy(code, ret42, sizeof(ret42));
	if (mprotect(code, ps, PROT_READ | PROT_EXEC))
		wl_setup_fail("mprotect code: %s", strerror(errno));
	if (call_code() != 42)
		wl_setup_fail("the code page does not return 42");

	dontfork = map_or_die(DONTFORK_PAGES * ps, rw, anon_priv, -1, "dontfork");
	wl_fill(dontfork, DONTFORK_PAGES * ps, DONTFORK);
	if (madvise(dontfork, DONTFORK_PAGES * ps, MADV_DONTFORK))
		wl_setup_fail("madvise DONTFORK: %s", strerror(errno));
	dontdump = map_or_die(DONTDUMP_PAGES * ps, rw, anon_priv, -1, "dontdump");
	wl_fill(dontdump, DONTDUMP_PAGES * ps, DONTDUMP);
	if (madvise(dontdump, DONTDUMP_PAGES * ps, MADV_DONTDUMP))
		wl_setup_fail("madvise DONTDUMP: %s", strerror(errno));
}

/* Page p of base holds seed^p; reports the first bad byte. */
static bool expect_pages(const char *what, const uint8_t *base, size_t first, size_t count,
			 uint64_t seed)
{
	for (size_t p = first; p < first + count; p++) {
		ssize_t bad = wl_mismatch(base + p * ps, ps, seed ^ p);

		if (!wl_expect(bad < 0, "%s page %zu differs at byte %zd", what, p, bad))
			return false;
	}
	return true;
}

static bool expect_zero(const char *what, const uint8_t *base, size_t page)
{
	ssize_t bad = wl_nonzero(base + page * ps, ps);

	return wl_expect(bad < 0, "%s page %zu should be zero, byte %zd is not", what, page, bad);
}

/* Writes a new pattern at page p of base and reads it back. */
static void expect_writable(const char *what, uint8_t *base, size_t page)
{
	wl_fill(base + page * ps, ps, LATER ^ page);
	expect_pages(what, base, page, 1, LATER);
}

static bool expect_perms(const char *what, const void *addr, size_t len, const char *perms)
{
	return wl_expect(wl_range_has_perms(addr, len, perms), "%s at %p is not mapped %s", what,
			 addr, perms);
}

static void expect_name(const char *what, const void *addr, const char *name)
{
	char now[PATH_MAX];

	if (!wl_expect(wl_mapping(addr, NULL, NULL, NULL, now, sizeof(now)), "%s: %p not mapped",
		       what, addr))
		return;
	wl_expect(!strcmp(now, name), "%s is mapped from '%s', expected '%s'", what, now, name);
}

static void check_heap(void)
{
	void *now = sbrk(0);
	char name[64];

	wl_expect(now == heap_brk, "program break is %p, was %p", now, heap_brk);
	for (size_t i = 0; i < HEAP_OBJS; i++) {
		ssize_t bad;

		if (!heap_obj[i])
			continue;
		bad = wl_mismatch(heap_obj[i], heap_len[i], HEAP ^ i);
		if (!wl_expect(bad < 0, "heap object %zu (%zu bytes at %p) differs at byte %zd", i,
			       heap_len[i], heap_obj[i], bad))
			break;
	}
	if (wl_mapping(heap_obj[1], NULL, NULL, NULL, name, sizeof(name)))
		wl_expect(!strcmp(name, "[heap]"), "heap objects are in '%s', not [heap]", name);
	else
		wl_expect(false, "heap object %p is not mapped", heap_obj[1]);

	/* malloc still works on the restored arena */
	for (size_t i = 0; i < HEAP_OBJS; i += 5) {
		heap_obj[i] = malloc(heap_len[i]);
		if (!wl_expect(heap_obj[i] != NULL, "malloc after restore failed"))
			return;
		wl_fill(heap_obj[i], heap_len[i], HEAP ^ i);
	}
	for (size_t i = 0; i < HEAP_OBJS; i++) {
		if (wl_mismatch(heap_obj[i], heap_len[i], HEAP ^ i) >= 0) {
			wl_expect(false, "heap object %zu differs after new mallocs", i);
			break;
		}
	}
	for (size_t i = 0; i < HEAP_OBJS; i++)
		free(heap_obj[i]);
}

static void check_anon(void)
{
	size_t bad_pages = 0;

	expect_perms("anon", anon, ANON_SIZE, "rw-p");
	for (size_t p = 0; p < ANON_SIZE / ps && bad_pages < 3; p++) {
		bool ok = anon_kind(p) == PAGE_WRITTEN ? expect_pages("anon", anon, p, 1, ANON)
						       : expect_zero("anon", anon, p);
		bad_pages += !ok;
	}
	expect_writable("anon (written page)", anon, 0);
	expect_writable("anon (untouched page)", anon, ANON_SIZE / ps - 1);
}

/* Reads page p of a file through read(). */
static bool file_page(const char *path, size_t page, uint8_t *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!wl_expect(fd >= 0, "open %s: %s", path, strerror(errno)))
		return false;
	n = wl_pread_all(fd, buf, ps, page * ps);
	close(fd);
	return wl_expect(n == (ssize_t)ps, "read page %zu of %s: %zd", page, path, n);
}

static bool file_write_page(const char *path, size_t page, uint64_t seed)
{
	static uint8_t buf[65536];
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (!wl_expect(fd >= 0, "open %s: %s", path, strerror(errno)))
		return false;
	wl_fill(buf, ps, seed ^ page);
	n = wl_pwrite_all(fd, buf, ps, page * ps);
	close(fd);
	return wl_expect(n == (ssize_t)ps, "write page %zu of %s: %s", page, path, strerror(errno));
}

static void check_private_file(void)
{
	static uint8_t buf[65536];

	expect_perms("private file mapping", priv, PRIV_PAGES * ps, "rw-p");
	expect_name("private file mapping", priv, priv_path);
	for (size_t p = 0; p < PRIV_PAGES; p++) {
		if (!file_page(priv_path, p, buf))
			return;
		if (!wl_expect(wl_mismatch(buf, ps, PRIV_FILE ^ p) < 0,
			       "private file page %zu changed in the file", p))
			return;
		if (p % 4 == 0) {
			if (!expect_pages("private file (COW page)", priv, p, 1, PRIV_COW))
				return;
		} else if (!wl_expect(!memcmp(priv + p * ps, buf, ps),
				      "private file mapping page %zu differs from the file", p)) {
			return;
		}
	}
	/* Pages never written still follow the file; COW pages do not. */
	for (size_t p = 0; p < 3; p++)
		if (!file_write_page(priv_path, p, PRIV_NEW))
			return;
	expect_pages("private file (COW page after the file changed)", priv, 0, 1, PRIV_COW);
	expect_pages("private file (read page after the file changed)", priv, 1, 1, PRIV_NEW);
	expect_pages("private file (untouched page after the file changed)", priv, 2, 1, PRIV_NEW);
	expect_writable("private file mapping", priv, 3);
	if (file_page(priv_path, 3, buf))
		wl_expect(wl_mismatch(buf, ps, PRIV_FILE ^ 3) < 0,
			  "a write to the private mapping reached the file");
}

static void check_shared_file(void)
{
	static uint8_t buf[65536];

	expect_perms("shared file mapping", shfile, SHF_PAGES * ps, "rw-s");
	expect_name("shared file mapping", shfile, shfile_path);
	expect_pages("shared file mapping", shfile, 0, SHF_MAPPED_WRITES, SHF_MAP);
	expect_pages("shared file mapping", shfile, SHF_MAPPED_WRITES,
		     SHF_PAGES - SHF_MAPPED_WRITES, SHF_FILE);
	for (size_t p = 0; p < SHF_PAGES; p++) {
		if (!file_page(shfile_path, p, buf))
			return;
		if (!wl_expect(!memcmp(buf, shfile + p * ps, ps),
			       "shared file page %zu: file and mapping differ", p))
			return;
	}
	/* writes go both ways */
	fill_pages(shfile, 9, 1, SHF_NEW);
	if (file_page(shfile_path, 9, buf))
		wl_expect(wl_mismatch(buf, ps, SHF_NEW ^ 9) < 0,
			  "a write to the shared mapping did not reach the file");
	if (file_write_page(shfile_path, 1, SHF_NEW))
		expect_pages("shared file mapping (after a write to the file)", shfile, 1, 1,
			     SHF_NEW);
}

/* A write through /proc/self/map_files must show in a shared mapping. */
static void expect_really_shared(const char *what, uint8_t *base, size_t page)
{
	static uint8_t buf[65536];
	uintptr_t start, end;
	char path[96];
	int fd;

	if (!wl_mapping(base, &start, &end, NULL, NULL, 0) || start != (uintptr_t)base)
		return;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)start,
		 (unsigned long)end);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		wl_say("%s: cannot open %s (%s), sharing not checked", what, path, strerror(errno));
		return;
	}
	wl_fill(buf, ps, SHF_NEW ^ page);
	wl_expect(wl_pwrite_all(fd, buf, ps, page * ps) == (ssize_t)ps, "write %s: %s", path,
		  strerror(errno));
	close(fd);
	expect_pages(what, base, page, 1, SHF_NEW);
}

static void check_shared(void)
{
	expect_perms("shared anon", shanon, SHARED_PAGES * ps, "rw-s");
	expect_name("shared anon", shanon, shanon_name);
	expect_pages("shared anon", shanon, 0, SHARED_WRITTEN, SHANON);
	for (size_t p = SHARED_WRITTEN; p < SHARED_PAGES; p++)
		expect_zero("shared anon", shanon, p);
	expect_writable("shared anon", shanon, 0);
	expect_really_shared("shared anon (written via map_files)", shanon, SHARED_PAGES - 1);

	expect_perms("memfd", memfd_map, SHARED_PAGES * ps, "rw-s");
	expect_name("memfd", memfd_map, memfd_name);
	expect_pages("memfd", memfd_map, 0, SHARED_WRITTEN, MEMFD);
	for (size_t p = SHARED_WRITTEN; p < SHARED_PAGES; p++)
		expect_zero("memfd", memfd_map, p);
	expect_writable("memfd", memfd_map, 1);
	expect_really_shared("memfd (written via map_files)", memfd_map, SHARED_PAGES - 1);
}

static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
	siglongjmp(fault_jmp, 1);
}

/* Whether a write to addr faults. */
static bool write_faults(volatile uint8_t *addr)
{
	struct sigaction sa, old;
	bool faulted = false;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(fault_jmp, 1) == 0)
		*addr = *addr;
	else
		faulted = true;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void check_protections(void)
{
	int ret;

	expect_perms("reserve", reserve, RESERVE_PAGES * ps, "---p");
	if (expect_perms("hidden", hidden, HIDDEN_PAGES * ps, "---p") &&
	    wl_expect(!mprotect(hidden, HIDDEN_PAGES * ps, PROT_READ | PROT_WRITE),
		      "mprotect hidden: %s", strerror(errno))) {
		ssize_t bad = wl_mismatch(hidden, HIDDEN_PAGES * ps, HIDDEN);

		wl_expect(bad < 0, "PROT_NONE region lost its contents (byte %zd differs)", bad);
		expect_writable("hidden", hidden, 0);
	}

	expect_perms("rodata", rodata, RODATA_PAGES * ps, "r--p");
	wl_expect(wl_mismatch(rodata, RODATA_PAGES * ps, RODATA) < 0, "read-only region differs");
	wl_expect(write_faults(rodata + ps), "a write to the read-only region did not fault");

	expect_perms("code", code, ps, "r-xp");
	ret = call_code();
	wl_expect(ret == 42, "the code page returned %d, not 42", ret);

	wl_expect(wl_mismatch(dontfork, DONTFORK_PAGES * ps, DONTFORK) < 0,
		  "MADV_DONTFORK region differs");
	wl_expect(wl_vmflag(dontfork, "dc"), "MADV_DONTFORK region lost its flag (no 'dc')");
	expect_writable("dontfork", dontfork, 0);
	wl_expect(wl_mismatch(dontdump, DONTDUMP_PAGES * ps, DONTDUMP) < 0,
		  "MADV_DONTDUMP region differs");
	wl_expect(wl_vmflag(dontdump, "dd"), "MADV_DONTDUMP region lost its flag (no 'dd')");
}

int main(int argc, char **argv)
{
	uint64_t stack_words[STACK_WORDS];

	wl_start(argc, argv, 0, "");
	ps = wl_page_size();
	if (ps > 65536)
		wl_setup_fail("page size %zu is too big for this workload", ps);
	setup_heap();
	setup_anon();
	fill_stack(stack_words, STACK_WORDS);
	setup_files();
	setup_shared();
	setup_protections();
	heap_brk = sbrk(0); /* after the last malloc of the setup */
	wl_say("anon %p heap brk %p stack %p priv %p shfile %p shanon %p memfd %p", (void *)anon,
	       heap_brk, (void *)stack_words, (void *)priv, (void *)shfile, (void *)shanon,
	       (void *)memfd_map);
	wl_ready();

	wl_wait_for_check();

	check_heap(); /* first: nothing may move the break before */
	wl_check_fds();
	wl_expect(wl_mismatch(stack_words, sizeof(stack_words), STACK) < 0,
		  "the array on main's stack differs");
	check_anon();
	check_private_file();
	check_shared_file();
	check_shared();
	check_protections();
	wl_finish();
}
