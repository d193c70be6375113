/*
 * Small utilities: cleanup attributes, full reads and writes, time.
 */
#ifndef FERRY_CORE_UTIL_H
#define FERRY_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <dirent.h>

#include "core/err.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* sys/user.h defines these too; include it first so that ours win everywhere. */
#include <sys/user.h>
#undef PAGE_SIZE
#undef PAGE_SHIFT
#define PAGE_SIZE 4096UL
#define PAGE_SHIFT 12
#define PAGE_ALIGN_DOWN(x) ((x) & ~(PAGE_SIZE - 1))
#define PAGE_ALIGN_UP(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);
void cleanup_closedirp(DIR **d);

#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_ __attribute__((cleanup(cleanup_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(cleanup_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(cleanup_closedirp)))

/* Take ownership out of a cleanup variable. */
static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}
static inline void *steal_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}

/* Write/read all of buf, retrying on EINTR and short counts. Return 0 or -errno (-EIO on EOF). */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);
int pwrite_all(int fd, const void *buf, size_t len, off_t off);
int pread_all(int fd, void *buf, size_t len, off_t off);

/* Read a whole (small, e.g. /proc) file into a NUL-terminated malloc'd buffer. */
int read_file(const char *path, char **out, size_t *len, struct ferry_err *err);
int read_file_at(int dirfd, const char *path, char **out, size_t *len, struct ferry_err *err);

/* Write a whole file atomically: PATH.tmp then rename. */
int write_file_atomic(const char *path, const void *buf, size_t len, struct ferry_err *err);

/* mkdir -p */
int mkdir_p(const char *path, mode_t mode, struct ferry_err *err);

uint64_t now_ns(int clock);
static inline uint64_t mono_ns(void)
{
	return now_ns(1 /* CLOCK_MONOTONIC */);
}

/* Parse a decimal pid/int with full validation. */
int parse_int(const char *s, long min, long max, long *out);

/* Close every fd but the n in keep (any order; -1 entries ignored), with
 * close_range over the gaps. Returns 0 or -errno. */
int close_fds_except(const int *keep, int n);
/*
 * A daemon's start: a session of its own, stdin and stdout on /dev/null, and
 * stderr too unless it is the only place errors go (keep_stderr).
 */
void detach_from_terminal(bool keep_stderr);

/* One message of len bytes with an fd attached over a unix socket (SCM_RIGHTS).
 * recv_fd returns the bytes received (0: the peer closed), *fd = -1 if none came. */
int send_fd(int sock, const void *buf, size_t len, int fd);
ssize_t recv_fd(int sock, void *buf, size_t len, int *fd);

/* Pin the calling thread to one CPU (-1: the CPU it runs on). Returns the cpu or -errno. */
int pin_to_cpu(int cpu);

#endif
