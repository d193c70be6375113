/*
 * bench/common.h: the small helpers that the benchmark programs share.
 * Header-only (static inline), so that each program stays one cc command.
 */
#ifndef FERRY_BENCH_COMMON_H
#define FERRY_BENCH_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * A size in MiB or KiB on the command line: a decimal number from 1 to 2^20.
 * Returns -1 for anything else.
 */
static inline int parse_size(const char *arg, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || v == 0 || v > (1ULL << 20))
		return -1;
	*out = v;
	return 0;
}

#endif
