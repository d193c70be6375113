/*
 * dirtier MIB PAGES_PER_S SUMFILE: the workload of the pre-copy benchmark
 * (bench/precopy.sh).
 *
 * Maps MIB MiB of private anonymous memory and writes a non-zero pattern into
 * every 8-byte word (as memhog does: no page is zero, no two pages are equal),
 * prints "ready", then keeps dirtying: every STEP_MS it writes one word into
 * each of PAGES_PER_S * STEP_MS / 1000 pages picked at random (uniformly, with
 * repeats), on an absolute-time schedule so that the rate holds even when a
 * step is late (for instance while ferry has the process frozen). Each write
 * stores a new non-zero value, so a page written once more really changes.
 *
 * Signals:
 *   SIGUSR1  stop dirtying for good; print "stopped pages P sum S" (P: page
 *            writes so far, S: a checksum of the whole area) and sleep in
 *            pause(). The state of the memory is then fixed, so that two
 *            images taken afterwards hold the same pages.
 *   SIGUSR2  append "sum S" (the checksum now) to SUMFILE, opened for that
 *            line only. Sent to a restored copy, it shows whether the restore
 *            brought back the same memory. Not stdout: ferry restores an open
 *            file only if it has not changed since the dump.
 */
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SEED 0x9e3779b97f4a7c15ULL
#define PAGE 4096
#define STEP_MS 10

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t sum_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		stop_requested = 1;
	else
		sum_requested = 1;
}

static int parse_num(const char *arg, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A checksum of every word that depends on each word's position. */
static uint64_t checksum(const uint64_t *mem, size_t nwords)
{
	uint64_t h = 0x84222325cbf29ce4ULL;
	size_t i;

	for (i = 0; i < nwords; i++)
		h = (h ^ mem[i]) * 0x100000001b3ULL + i;
	return h;
}

static void add_ms(struct timespec *t, long ms)
{
	t->tv_nsec += ms * 1000000L;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static void print_sum(const char *what, const uint64_t *mem, size_t nwords)
{
	printf("%s%016llx\n", what, (unsigned long long)checksum(mem, nwords));
	fflush(stdout);
}

static void append_sum(const char *path, const uint64_t *mem, size_t nwords)
{
	char line[64];
	int fd, n;

	n = snprintf(line, sizeof(line), "sum %016llx\n", (unsigned long long)checksum(mem, nwords));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "dirtier: %s: %s\n", path, strerror(errno));
		return;
	}
	if (write(fd, line, (size_t)n) != n)
		fprintf(stderr, "dirtier: %s: short write\n", path);
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned long long mib, rate, writes = 0, stamp = 1;
	size_t len, nwords, npages, i;
	uint64_t *mem, rng = 0x2545f4914f6cdd1dULL;
	double per_step, owed = 0;
	struct sigaction sa;
	struct timespec next, now;

	if (argc != 4 || parse_num(argv[1], 1ULL << 20, &mib) < 0 ||
	    parse_num(argv[2], 1ULL << 30, &rate) < 0) {
		fprintf(stderr, "usage: dirtier MIB PAGES_PER_S SUMFILE\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a signal ends the sleep at once */
	if (sigaction(SIGUSR1, &sa, NULL) < 0 || sigaction(SIGUSR2, &sa, NULL) < 0) {
		perror("dirtier: sigaction");
		return 1;
	}
	len = (size_t)mib << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "dirtier: mmap %llu MiB: %s\n", mib, strerror(errno));
		return 1;
	}
	nwords = len / sizeof(*mem);
	npages = len / PAGE;
	for (i = 0; i < nwords; i++)
		mem[i] = (i * PATTERN_SEED) | 1;

	printf("ready\n");
	fflush(stdout);
	per_step = (double)rate * STEP_MS / 1000.0;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_requested) {
		if (sum_requested) {
			sum_requested = 0;
			append_sum(argv[3], mem, nwords);
		}
		owed += per_step;
		while (owed >= 1.0) {
			uint64_t r = xorshift(&rng);
			size_t page = (size_t)(r % npages);
			size_t word = (size_t)((r >> 40) % (PAGE / sizeof(*mem)));

			mem[page * (PAGE / sizeof(*mem)) + word] = (stamp++ * PATTERN_SEED) | 1;
			writes++;
			owed -= 1.0;
		}
		add_ms(&next, STEP_MS);
		/* steps missed while frozen are caught up, at most one second's worth */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec + 1 ||
		    (now.tv_sec == next.tv_sec + 1 && now.tv_nsec > next.tv_nsec))
			next = now;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR &&
		       !stop_requested && !sum_requested)
			;
	}
	printf("stopped pages %llu ", writes);
	print_sum("sum ", mem, nwords);
	for (;;) {
		pause();
		if (sum_requested) {
			sum_requested = 0;
			append_sum(argv[3], mem, nwords);
		}
	}
}
