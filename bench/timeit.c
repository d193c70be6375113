/*
 * timeit OUT CMD ARGS...: run CMD and write "WALL_NS MAXRSS_KIB STATUS" to OUT.
 *
 * WALL_NS is CLOCK_MONOTONIC from just before the fork to just after wait4
 * returns, so it covers fork, exec and the whole command. MAXRSS_KIB is
 * ru_maxrss of the command as wait4 reports it: the peak resident set of the
 * command, or of a descendant it waited for if that was larger (ferry dump
 * forks none; memory of the target read through process_vm_readv is not
 * counted, file pages the command maps are). STATUS is the exit status, or
 * 128+N if a signal N ended it; timeit exits with it too.
 *
 * The result goes to a file, not stdout, so that it never mixes with what the
 * command prints. stdin, stdout and stderr are passed on untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	struct rusage ru;
	uint64_t t0, t1;
	int status, code;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: timeit OUT CMD ARGS...\n");
		return 2;
	}
	out = fopen(argv[1], "we");
	if (!out) {
		fprintf(stderr, "timeit: create %s: %s\n", argv[1], strerror(errno));
		return 2;
	}

	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "timeit: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "timeit: exec %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "timeit: wait for %d: %s\n", pid, strerror(errno));
			return 2;
		}
	}
	t1 = now_ns();

	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(out, "%llu %ld %d\n", (unsigned long long)(t1 - t0), ru.ru_maxrss, code);
	if (fclose(out) != 0) {
		fprintf(stderr, "timeit: write %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	return code;
}
