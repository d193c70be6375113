/*
 * memhog MIB: the workload that the dump and restore benchmarks move.
 *
 * Maps MIB MiB of private anonymous memory, writes a non-zero pattern into
 * every byte (each 8-byte word holds its own offset mixed with a constant, so
 * no page is zero, no two pages are equal and nothing can be deduplicated),
 * prints "ready" on stdout and sleeps in pause() until it is killed.
 *
 * The memory is written once before "ready" and never again, so every page is
 * present and dirty when the dump freezes the process.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define PATTERN_SEED 0x9e3779b97f4a7c15ULL

int main(int argc, char **argv)
{
	size_t mib, len, nwords, i;
	uint64_t *mem;

	if (argc != 2 || parse_size(argv[1], &mib) < 0) {
		fprintf(stderr, "usage: memhog MIB\n");
		return 2;
	}
	len = mib << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "memhog: mmap %zu MiB: %s\n", mib, strerror(errno));
		return 1;
	}
	nwords = len / sizeof(*mem);
	for (i = 0; i < nwords; i++)
		mem[i] = (i * PATTERN_SEED) | 1;

	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
