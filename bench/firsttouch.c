/*
 * firsttouch: this machine's own limits for writing into memory that nobody
 * has touched yet, the ceilings that ferry's dump and restore are held to.
 *
 *   firsttouch anon MIB            mmap MIB MiB of private anonymous memory and
 *                                  memset it (a non-zero byte): every page is
 *                                  faulted in and zeroed by the kernel, then
 *                                  written, as restore does with a fresh VMA.
 *   firsttouch file PATH MIB KIB   create PATH (it must not exist) and write
 *                                  MIB MiB into it with KIB KiB write() calls
 *                                  from one pre-touched buffer, as a dump
 *                                  writes its pages file; PATH is left behind
 *                                  for the caller to remove.
 *
 * Prints one line "BYTES NS": how many bytes were written and how long it took
 * (CLOCK_MONOTONIC, nanoseconds, from before the mmap or open to after the
 * last byte is written or the file is closed). Exit status 1 on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define FILL_BYTE 0x5a

static int touch_anon(size_t len)
{
	uint64_t t0, t1;
	char *mem;

	t0 = now_ns();
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "firsttouch: mmap %zu bytes: %s\n", len, strerror(errno));
		return 1;
	}
	memset(mem, FILL_BYTE, len);
	t1 = now_ns();
	/* read one byte back so that the memset cannot be dropped */
	if (mem[len - 1] != FILL_BYTE)
		return 1;
	printf("%zu %llu\n", len, (unsigned long long)(t1 - t0));
	munmap(mem, len);
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int touch_file(const char *path, size_t len, size_t chunk)
{
	uint64_t t0, t1;
	size_t done;
	char *buf;
	int fd;

	buf = malloc(chunk);
	if (!buf) {
		fprintf(stderr, "firsttouch: cannot allocate %zu bytes\n", chunk);
		return 1;
	}
	/* the source buffer is touched before the clock starts */
	memset(buf, FILL_BYTE, chunk);

	t0 = now_ns();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "firsttouch: create %s: %s\n", path, strerror(errno));
		free(buf);
		return 1;
	}
	for (done = 0; done < len; done += chunk) {
		if (write_all(fd, buf, chunk) < 0) {
			fprintf(stderr, "firsttouch: write %s at %zu: %s\n", path, done,
				strerror(errno));
			close(fd);
			free(buf);
			return 1;
		}
	}
	if (close(fd) < 0) {
		fprintf(stderr, "firsttouch: close %s: %s\n", path, strerror(errno));
		free(buf);
		return 1;
	}
	t1 = now_ns();
	free(buf);
	printf("%zu %llu\n", len, (unsigned long long)(t1 - t0));
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: firsttouch anon MIB\n"
			"       firsttouch file PATH MIB KIB\n");
	return 2;
}

int main(int argc, char **argv)
{
	size_t mib, kib;

	if (argc == 3 && strcmp(argv[1], "anon") == 0) {
		if (parse_size(argv[2], &mib) < 0)
			return usage();
		return touch_anon(mib << 20);
	}
	if (argc == 5 && strcmp(argv[1], "file") == 0) {
		if (parse_size(argv[3], &mib) < 0 || parse_size(argv[4], &kib) < 0)
			return usage();
		if ((mib << 20) % (kib << 10) != 0) {
			fprintf(stderr, "firsttouch: %zu MiB is not a multiple of %zu KiB\n", mib,
				kib);
			return 2;
		}
		return touch_file(argv[2], mib << 20, kib << 10);
	}
	return usage();
}
