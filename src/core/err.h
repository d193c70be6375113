/*
 * Errors that carry their story.
 *
 * A function that can fail takes `struct ferry_err *err` last, returns a
 * negative errno-style code on failure and fills err with a one-line message.
 * Callers add context on the way up with ferry_wrap(), so the CLI prints e.g.
 * "restore pid 42: map 7f00-7f10 of /usr/lib/libc.so.6: No such file or directory".
 * Only src/cli/ prints errors and exits.
 */
#ifndef FERRY_CORE_ERR_H
#define FERRY_CORE_ERR_H

#include <stddef.h>

#define FERRY_ERR_MSG 2048

struct ferry_err {
	int code; /* positive errno value, 0 if none */
	char msg[FERRY_ERR_MSG];
};

/* Set the error: "<formatted>: strerror(code)" when code != 0. Returns -code (or -EINVAL). */
int ferry_fail(struct ferry_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set the error without appending strerror: for refusals and validation errors
 * whose message says it all. Returns -code. */
int ferry_refuse(struct ferry_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same as ferry_fail with code = errno. */
int ferry_fail_errno(struct ferry_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prepend context: "<formatted>: <old message>". Returns -err->code (or -EINVAL). */
int ferry_wrap(struct ferry_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void ferry_err_clear(struct ferry_err *err);

#endif
