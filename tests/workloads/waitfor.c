/*
 * waitfor FILE REGEX TIMEOUT_SECONDS
 *
 * Waits until a complete line of FILE matches the extended regex REGEX; exit 0.
 * On timeout it prints what it waited for and the last lines of FILE, exit 1;
 * usage or regex errors exit 2. FILE need not exist yet. It sleeps in poll on
 * an inotify watch of FILE's directory (created, written, moved in), never in
 * a timed sleep; TIMEOUT_SECONDS may have a fraction.
 *
 * FILE is read on from where the last complete line ended; if FILE shrinks or
 * is replaced, reading starts again from its beginning.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 65536

static const char *path;
static regex_t re;
static off_t offset;
static ino_t inode;
static char line[LINE_MAX_LEN + 1];
static size_t line_len;
static char tail_lines[4][256];
static unsigned tail_count;

static void remember(const char *l)
{
	size_t n = strnlen(l, sizeof(tail_lines[0]) - 1);

	memcpy(tail_lines[tail_count % 4], l, n);
	tail_lines[tail_count % 4][n] = 0;
	tail_count++;
}

/* Reads what FILE gained since last time; true once a line matches. */
static bool scan(void)
{
	char buf[8192];
	struct stat st;
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && (st.st_ino != inode || st.st_size < offset)) {
		inode = st.st_ino;
		offset = 0;
		line_len = 0;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (line_len < LINE_MAX_LEN)
					line[line_len++] = buf[i];
				continue;
			}
			line[line_len] = 0;
			line_len = 0;
			remember(line);
			if (regexec(&re, line, 0, NULL, 0) == 0) {
				close(fd);
				return true;
			}
		}
		offset += n;
	}
	close(fd);
	return false;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report_timeout(const char *regex, double timeout)
{
	unsigned first = tail_count > 4 ? tail_count - 4 : 0;

	fprintf(stderr, "waitfor: no line of %s matched '%s' within %g s", path, regex, timeout);
	if (!tail_count) {
		fprintf(stderr, " (no complete line read)\n");
		return;
	}
	fprintf(stderr, "; last lines:\n");
	for (unsigned i = first; i < tail_count; i++)
		fprintf(stderr, "  %s\n", tail_lines[i % 4]);
}

int main(int argc, char **argv)
{
	char dir_buf[PATH_MAX];
	double timeout;
	int64_t deadline;
	char *end;
	int in, err;

	if (argc != 4) {
		fprintf(stderr, "usage: waitfor FILE REGEX TIMEOUT_SECONDS\n");
		return 2;
	}
	path = argv[1];
	timeout = strtod(argv[3], &end);
	if (*end || end == argv[3] || timeout < 0) {
		fprintf(stderr, "waitfor: bad timeout '%s'\n", argv[3]);
		return 2;
	}
	err = regcomp(&re, argv[2], REG_EXTENDED | REG_NOSUB);
	if (err) {
		char msg[256];

		regerror(err, &re, msg, sizeof(msg));
		fprintf(stderr, "waitfor: bad regex '%s': %s\n", argv[2], msg);
		return 2;
	}

	snprintf(dir_buf, sizeof(dir_buf), "%s", path);
	in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0 || inotify_add_watch(in, dirname(dir_buf),
					IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		fprintf(stderr, "waitfor: inotify on the directory of %s: %s\n", path,
			strerror(errno));
		return 2;
	}

	deadline = now_ms() + (int64_t)(timeout * 1000);
	/* The watch is in place before the first read, so no write is missed. */
	while (!scan()) {
		struct pollfd pfd = {in, POLLIN, 0};
		int64_t left = deadline - now_ms();
		char events[4096];

		if (left <= 0) {
			report_timeout(argv[2], timeout);
			return 1;
		}
		if (poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) < 0 && errno != EINTR) {
			perror("waitfor: poll");
			return 2;
		}
		while (read(in, events, sizeof(events)) > 0)
			;
	}
	return 0;
}
