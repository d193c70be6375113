#include "mem/keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

static socklen_t keeper_addr(pid_t pid, uint64_t start_time, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "ferry-track-%d-%lu", pid,
			 (unsigned long)start_time);
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

/* One request, one answer (and maybe an fd). */
static int ask(pid_t pid, uint64_t start_time, const char *req, char *ans, size_t anslen,
	       int *fd_out, struct ferry_err *err)
{
	struct sockaddr_un sa;
	socklen_t len = keeper_addr(pid, start_time, &sa);
	_cleanup_close_ int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ssize_t n;
	int fd;

	if (s < 0)
		return ferry_fail_errno(err, "socket");
	if (connect(s, (struct sockaddr *)&sa, len) < 0) {
		if (errno == ECONNREFUSED || errno == ENOENT)
			return -ENOENT;
		return ferry_fail_errno(err, "connect to the tracking keeper of pid %d", pid);
	}
	if (send(s, req, strlen(req), MSG_NOSIGNAL) < 0)
		return ferry_fail_errno(err, "talk to the tracking keeper of pid %d", pid);
	n = recv_fd(s, ans, anslen - 1, &fd);
	if (n <= 0)
		return ferry_fail(err, EPIPE, "the tracking keeper of pid %d did not answer", pid);
	ans[n] = '\0';
	if (fd_out)
		*fd_out = fd;
	else if (fd >= 0)
		close(fd);
	if (strncmp(ans, "OK", 2))
		return ferry_refuse(err, EPROTO, "tracking keeper of pid %d: %s", pid, ans);
	return 0;
}

int keeper_get(pid_t pid, uint64_t start_time, struct keeper_state *ks, struct ferry_err *err)
{
	char ans[4200], snap[64], dir[4096];
	int r;

	memset(ks, 0, sizeof(*ks));
	ks->uffd = -1;
	r = ask(pid, start_time, "GET", ans, sizeof(ans), &ks->uffd, err);
	if (r < 0)
		return r;
	if (ks->uffd < 0 || sscanf(ans, "OK %63s %4095s", snap, dir) != 2)
		return ferry_refuse(err, EPROTO, "tracking keeper of pid %d: bad answer '%s'", pid,
				    ans);
	if (strcmp(snap, "-"))
		snprintf(ks->snapshot, sizeof(ks->snapshot), "%s", snap);
	if (strcmp(dir, "-"))
		snprintf(ks->dir, sizeof(ks->dir), "%s", dir);
	return 0;
}

int keeper_set(pid_t pid, uint64_t start_time, const char *snapshot, const char *dir,
	       struct ferry_err *err)
{
	char req[4200], ans[64];

	if (strchr(dir, ' ') || strchr(dir, '\n'))
		dir = "-"; /* unusable as a default parent: the next round needs --prev-images-dir */
	snprintf(req, sizeof(req), "SET %s %s", snapshot, dir);
	int r = ask(pid, start_time, req, ans, sizeof(ans), NULL, err);
	if (r == -ENOENT)
		return ferry_refuse(err, ESRCH,
				    "the tracking keeper of pid %d is gone: did the process exit?", pid);
	return r;
}

int keeper_stop(pid_t pid, uint64_t start_time, struct ferry_err *err)
{
	char ans[64];
	int r = ask(pid, start_time, "STOP", ans, sizeof(ans), NULL, err);

	return r == -ENOENT ? 0 : r;
}

static void serve(int ls, int pidfd, int uffd)
{
	char snap[64] = "-", dir[4096] = "-";

	for (;;) {
		struct pollfd p[2] = {{ls, POLLIN, 0}, {pidfd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents)
			return; /* the target is gone */
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char req[4200];
		struct timeval tv = {2, 0};
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = recv(c, req, sizeof(req) - 1, 0);
		if (n <= 0) {
			close(c);
			continue;
		}
		req[n] = '\0';
		if (!strcmp(req, "GET")) {
			char ans[4200];
			int len = snprintf(ans, sizeof(ans), "OK %s %s\n", snap, dir);
			send_fd(c, ans, len, uffd);
		} else if (!strncmp(req, "SET ", 4) &&
			   sscanf(req + 4, "%63s %4095s", snap, dir) == 2) {
			send(c, "OK\n", 3, MSG_NOSIGNAL);
		} else if (!strcmp(req, "STOP")) {
			send(c, "OK\n", 3, MSG_NOSIGNAL);
			close(c);
			return;
		} else {
			send(c, "ERR unknown request\n", 20, MSG_NOSIGNAL);
		}
		close(c);
	}
}

int keeper_start(pid_t pid, uint64_t start_time, int uffd, struct ferry_err *err)
{
	struct sockaddr_un sa;
	socklen_t len = keeper_addr(pid, start_time, &sa);
	int ls, pidfd, ready[2];
	pid_t kid;
	char c;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return ferry_fail_errno(err, "pidfd of pid %d", pid);
	ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, len) < 0 || listen(ls, 8) < 0) {
		int r = ferry_fail_errno(err, "listen for the tracking keeper of pid %d", pid);
		if (ls >= 0)
			close(ls);
		close(pidfd);
		return r;
	}
	if (pipe2(ready, O_CLOEXEC) < 0) {
		close(ls);
		close(pidfd);
		return ferry_fail_errno(err, "pipe");
	}
	kid = fork();
	if (kid < 0) {
		close(ls);
		close(pidfd);
		close(ready[0]);
		close(ready[1]);
		return ferry_fail_errno(err, "fork the tracking keeper");
	}
	if (kid == 0) {
		/* a daemon of its own: no terminal, no fd but what it serves */
		setsid();
		if (fork() > 0)
			_exit(0);
		prctl(PR_SET_NAME, "ferry-keeper", 0, 0, 0);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		int keep[] = {0, 1, 2, ls, pidfd, uffd, ready[1]};
		close_fds_except(keep, ARRAY_SIZE(keep));
		signal(SIGPIPE, SIG_IGN);
		write_all(ready[1], "K", 1);
		close(ready[1]);
		serve(ls, pidfd, uffd);
		_exit(0);
	}
	close(ready[1]);
	close(ls);
	close(pidfd);
	while (waitpid(kid, NULL, 0) < 0 && errno == EINTR)
		;
	ssize_t n = read(ready[0], &c, 1);
	close(ready[0]);
	if (n != 1)
		return ferry_refuse(err, ECHILD, "the tracking keeper of pid %d did not start", pid);
	pr_info("pid %d: tracking keeper started", pid);
	return 0;
}
