/*
 * counter: a process whose memory keeps changing.
 *
 *   counter OUTFILE [MIB]
 *
 * About every 100 ms it increments a 64-bit counter, rewrites a few pages of a
 * malloc'd buffer (MIB MiB, 16 by default) and appends "# tick N". Every page p
 * of the buffer holds the pattern of seed (p, generation[p]); each tick bumps
 * the generation of four pages and rewrites them, so pre-copy rounds always
 * find dirty pages. The tick count is kept three ways (the global counter, a
 * local in main, the sum of the generations / 4) and written to OUTFILE.
 *
 * On SIGUSR2: every page holds its pattern, the three counts agree, the last
 * "# tick" line in OUTFILE is the counter, and three more ticks still work.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

#define PAGES_PER_TICK 4

static volatile uint64_t counter;
static uint8_t *buffer;
static uint32_t *generation;
static size_t npages;
static uint64_t counter_at_ready;
static const char *outfile;

static uint64_t page_seed(size_t page, uint32_t gen)
{
	return ((uint64_t)page << 32) ^ gen ^ 0xc0c0;
}

static void write_page(size_t page)
{
	size_t ps = wl_page_size();

	wl_fill(buffer + page * ps, ps, page_seed(page, generation[page]));
}

static void tick(uint64_t *local_ticks)
{
	uint64_t n = counter + 1;

	for (size_t k = 0; k < PAGES_PER_TICK; k++) {
		size_t page = (n * 7919 + k * (npages / PAGES_PER_TICK + 1)) % npages;

		generation[page]++;
		write_page(page);
	}
	counter = n;
	(*local_ticks)++;
	wl_say("tick %" PRIu64, n);
}

/* Sleeps about 100 ms; returns early when a check was requested. */
static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000}, rem;

	while (nanosleep(&ts, &rem) < 0) {
		if (!wl_expect(errno == EINTR, "nanosleep failed with errno %d", errno))
			return;
		if (wl_check_requested)
			return;
		ts = rem;
	}
}

static void check_buffer(void)
{
	size_t ps = wl_page_size();
	uint64_t gen_sum = 0;

	for (size_t p = 0; p < npages; p++) {
		ssize_t bad = wl_mismatch(buffer + p * ps, ps, page_seed(p, generation[p]));

		gen_sum += generation[p];
		if (!wl_expect(bad < 0, "buffer page %zu (generation %u) differs at byte %zd", p,
			       generation[p], bad))
			return;
	}
	wl_expect(gen_sum == counter * PAGES_PER_TICK,
		  "generations sum to %" PRIu64 ", expected %" PRIu64, gen_sum,
		  counter * PAGES_PER_TICK);
}

/* The last "# tick N" line of OUTFILE, read back through a new open of our fd. */
static uint64_t last_tick_in_outfile(void)
{
	static char buf[64 * 1024];
	uint64_t last = 0;
	off_t size, from;
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", wl_out_fd());
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return UINT64_MAX;
	size = lseek(fd, 0, SEEK_END);
	from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
	n = wl_pread_all(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n < 0)
		return UINT64_MAX;
	buf[n] = 0;
	for (char *line = strstr(buf, "# tick "); line; line = strstr(line + 1, "# tick "))
		if (line == buf || line[-1] == '\n')
			last = strtoull(line + 7, NULL, 10);
	return last;
}

int main(int argc, char **argv)
{
	uint64_t local_ticks = 0;
	size_t mib = 16;

	wl_start(argc, argv, 0, "[MIB]");
	outfile = argv[1];
	if (argc > 2)
		mib = strtoul(argv[2], NULL, 10);
	if (mib < 1)
		wl_setup_fail("buffer size must be at least 1 MiB");
	npages = mib * 1024 * 1024 / wl_page_size();
	buffer = malloc(npages * wl_page_size());
	generation = calloc(npages, sizeof(*generation));
	if (!buffer || !generation)
		wl_setup_fail("cannot allocate %zu MiB", mib);
	for (size_t p = 0; p < npages; p++)
		write_page(p);

	tick(&local_ticks);
	counter_at_ready = counter;
	wl_ready();
	while (!wl_check_requested) {
		nap();
		if (!wl_check_requested)
			tick(&local_ticks);
	}

	wl_say("check at tick %" PRIu64, counter);
	wl_check_fds();
	check_buffer();
	wl_expect(local_ticks == counter,
		  "counter is %" PRIu64 " but main counted %" PRIu64 " ticks", counter,
		  local_ticks);
	wl_expect(counter >= counter_at_ready, "counter %" PRIu64 " went below %" PRIu64, counter,
		  counter_at_ready);
	{
		uint64_t last = last_tick_in_outfile();

		wl_expect(last == counter, "last tick in %s is %" PRIu64 ", counter is %" PRIu64,
			  outfile, last, counter);
	}
	for (int i = 0; i < 3; i++) {
		uint64_t before = counter;

		tick(&local_ticks);
		wl_expect(counter == before + 1, "counter did not increase after tick");
	}
	check_buffer();
	wl_finish();
}
