#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ferry_log_level = LOG_WARN;
static int log_fd = 2;
static struct timespec log_start;

int log_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	log_fd = fd;
	return 0;
}

int log_fileno(void)
{
	return log_fd;
}

int log_to_file(void)
{
	return log_fd != 2;
}

void log_set_level(int level)
{
	ferry_log_level = level;
}

void log_msg(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};
	char buf[4096];
	struct timespec now;
	va_list ap;
	int n, saved = errno;

	if (level > ferry_log_level)
		return;
	/* FERRY_LOG_CLOCK=monotonic: absolute CLOCK_MONOTONIC seconds, so that
	 * the logs of several ferry processes line up (benchmarks, debugging) */
	if (!log_start.tv_sec && !log_start.tv_nsec) {
		const char *c = getenv("FERRY_LOG_CLOCK");
		if (c && !strcmp(c, "monotonic"))
			log_start.tv_nsec = 1; /* from 0, a nanosecond off */
		else
			clock_gettime(CLOCK_MONOTONIC, &log_start);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
	n = snprintf(buf, sizeof(buf), "(%.6f) %s: ", t, names[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(log_fd, buf, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}
