/*
 * pidwait PID TIMEOUT_SECONDS
 *
 * Waits until process PID has exited (it need not be our child: pidfd_open
 * and poll, which reports a zombie as exited too); exit 0. A PID that does not
 * exist counts as exited. On timeout: a message, exit 1; usage errors exit 2.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	char *end_pid, *end_t;
	long pid;
	double timeout;
	int64_t deadline;
	int pidfd;

	if (argc != 3) {
		fprintf(stderr, "usage: pidwait PID TIMEOUT_SECONDS\n");
		return 2;
	}
	pid = strtol(argv[1], &end_pid, 10);
	timeout = strtod(argv[2], &end_t);
	if (*end_pid || end_pid == argv[1] || pid <= 0 || *end_t || end_t == argv[2] ||
	    timeout < 0) {
		fprintf(stderr, "usage: pidwait PID TIMEOUT_SECONDS\n");
		return 2;
	}
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		if (errno == ESRCH)
			return 0;
		fprintf(stderr, "pidwait: pidfd_open %ld: %s\n", pid, strerror(errno));
		return 2;
	}
	deadline = now_ms() + (int64_t)(timeout * 1000);
	for (;;) {
		struct pollfd pfd = {pidfd, POLLIN, 0};
		int64_t left = deadline - now_ms();
		int n;

		if (left < 0)
			left = 0;
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			perror("pidwait: poll");
			return 2;
		}
		if (n == 0 && left == 0) {
			fprintf(stderr, "pidwait: process %ld still running after %g s\n", pid,
				timeout);
			return 1;
		}
	}
}
