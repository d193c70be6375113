/*
 * ptrace-hold PID
 *
 * Attaches to PID with PTRACE_SEIZE and stays its tracer until killed, so that
 * a test can check what ferry does with a process that someone else traces.
 * The tracee keeps running: signals are passed on to it, group-stops are
 * entered with PTRACE_LISTEN. Once attached, PID's TracerPid (in
 * /proc/PID/status) is ours and "ptrace-hold: attached PID" is printed on
 * stdout. Exit 0 when the tracee is gone, 1 if the seize fails, 2 on usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *end;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: ptrace-hold PID\n");
		return 2;
	}
	pid = (pid_t)strtol(argv[1], &end, 10);
	if (*end || end == argv[1] || pid <= 0) {
		fprintf(stderr, "usage: ptrace-hold PID\n");
		return 2;
	}
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
		fprintf(stderr, "ptrace-hold: PTRACE_SEIZE %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	printf("ptrace-hold: attached %d\n", (int)pid);
	fflush(stdout);

	for (;;) {
		int status, sig;

		if (waitpid(pid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECHILD ? 0 : 1;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 0;
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		if (status >> 16 == PTRACE_EVENT_STOP) {
			/* group-stop (SIGSTOP and friends) or an interrupt: stay stopped */
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
				ptrace(PTRACE_LISTEN, pid, NULL, NULL);
			else
				ptrace(PTRACE_CONT, pid, NULL, NULL);
			continue;
		}
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
	}
}
