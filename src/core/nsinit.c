/*
 * nsinit: start a ferry init as PID 1 of fresh PID, mount and time namespaces.
 *
 * Two processes take part, besides the caller:
 *
 *   caller ──unshare(NEWTIME), offsets, clone3(NEWPID|NEWNS)──> init ──clone3(set_tid {2})──> PID 2
 *     │ ^                                                        │ │ private /proc
 *     │ └── reports ─────────────────────────────────────────────┘ │
 *     └──── ack ───────────────────────────────────────────────────┘
 *
 * A time namespace only takes offsets before any process has entered it, and
 * unshare(CLONE_NEWTIME) moves only the caller's future children into it: the
 * caller unshares, writes the offsets, clones the init (its child, in the new
 * time namespace), then sets its children's namespace back.
 *
 * Reports and the ack travel over one SOCK_SEQPACKET socketpair: messages
 * stay whole, and MSG_NOSIGNAL spares
 * everyone a SIGPIPE when the other side is gone. The init reports READY once
 * PID 2 exists, then waits for the caller's ack before reaping anything, so
 * PID 2 (even a PID 2 that already died) is still listed in
 * /proc/INIT/task/INIT/children while the caller looks up its outer pid there.
 * After the ack the init closes its socket, and the caller waits for that EOF,
 * so that when nsinit_spawn returns the init holds only stdio. Any step that
 * fails sends FAIL with the step and errno.
 *
 * init and PID 2 are forks of a possibly threaded caller, so they stick
 * to plain system calls: no malloc, no stdio, no locks.
 */
#include "core/nsinit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define NSEC_PER_SEC 1000000000LL

/* The signals the init passes on to PID 2. */
static const int forwarded_signals[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
					SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH};

enum nsinit_step {
	STEP_UNSHARE_TIME = 1,
	STEP_TIME_OFFSETS,
	STEP_CLONE_INIT,
	STEP_SIGNALS,
	STEP_CLOSE_FDS,
	STEP_MOUNT_PRIVATE,
	STEP_MOUNT_PROC,
	STEP_CLONE_CHILD,
};

static const char *step_name(int step)
{
	switch (step) {
	case STEP_UNSHARE_TIME: return "unshare a time namespace";
	case STEP_TIME_OFFSETS: return "write the time namespace offsets";
	case STEP_CLONE_INIT: return "create the init in new PID and mount namespaces";
	case STEP_SIGNALS: return "set up the init's signals";
	case STEP_CLOSE_FDS: return "close the init's inherited fds";
	case STEP_MOUNT_PRIVATE: return "make the init's mounts private";
	case STEP_MOUNT_PROC: return "mount the init's /proc";
	case STEP_CLONE_CHILD: return "create PID 2 (clone3 with set_tid)";
	default: return "unknown step";
	}
}

enum msg_kind { MSG_READY = 1, MSG_FAIL };

/* One report from the init to the caller: one seqpacket message. */
struct nsinit_msg {
	int32_t kind;
	int32_t step; /* MSG_FAIL */
	int32_t code; /* MSG_FAIL: errno */
};

/* What the init and PID 2 need; lives in their copy of the caller's stack. */
struct spawn_ctx {
	const struct nsinit_cfg *cfg;
	int (*child_fn)(void *arg);
	void *arg;
	int sock[2]; /* [0] the caller's end, [1] the init's end */
	sigset_t old_mask;
	struct sigaction old_act[NSIG];
};

pid_t raw_clone3(uint64_t flags, pid_t *set_tid, size_t n_set_tid)
{
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.flags = flags;
	/* with CLONE_PARENT the child inherits our exit signal; clone3 refuses to be told one */
	args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
	args.set_tid = (uintptr_t)set_tid;
	args.set_tid_size = n_set_tid;
	return syscall(SYS_clone3, &args, sizeof(args));
}

static void send_msg(int fd, int kind, int step, int code)
{
	struct nsinit_msg m = {.kind = kind, .step = step, .code = code};

	/* a failure means the caller is gone: nobody is left to tell */
	while (send(fd, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static _Noreturn void fail_step(const struct spawn_ctx *ctx, int step)
{
	send_msg(ctx->sock[1], MSG_FAIL, step, errno ? errno : EIO);
	_exit(127);
}

/* Append the decimal form of v to buf at *pos (async-signal-safe). */
static void append_int(char *buf, size_t *pos, int64_t v)
{
	char digits[24];
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	int n = 0;

	do {
		digits[n++] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0)
		buf[(*pos)++] = '-';
	while (n)
		buf[(*pos)++] = digits[--n];
}

static void append_offset(char *buf, size_t *pos, const char *clock, int64_t off_ns)
{
	int64_t sec = off_ns / NSEC_PER_SEC, nsec = off_ns % NSEC_PER_SEC;

	/* the kernel wants 0 <= nsec < 1e9, so round the seconds down */
	if (nsec < 0) {
		nsec += NSEC_PER_SEC;
		sec--;
	}
	memcpy(buf + *pos, clock, strlen(clock));
	*pos += strlen(clock);
	buf[(*pos)++] = ' ';
	append_int(buf, pos, sec);
	buf[(*pos)++] = ' ';
	append_int(buf, pos, nsec);
	buf[(*pos)++] = '\n';
}

/* Must run after unshare(CLONE_NEWTIME) and before any process enters the namespace. */
static int write_time_offsets(const struct nsinit_cfg *cfg)
{
	char buf[128];
	size_t len = 0;
	int fd, r;

	append_offset(buf, &len, "monotonic", cfg->monotonic_off_ns);
	append_offset(buf, &len, "boottime", cfg->boottime_off_ns);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = write(fd, buf, len);
	if (r < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}


/* Never runs (the signals stay blocked); a handler only keeps the kernel from dropping them. */
static void unused_handler(int sig)
{
	(void)sig;
}

/*
 * Block the forwarded signals and SIGCHLD, which the init takes with
 * sigwaitinfo(), and give them a handler anyway: the kernel drops a signal to
 * the PID 1 of a namespace left at SIG_DFL, and a SIGCHLD left at SIG_IGN would
 * reap PID 2 behind the init's back. The old state is kept for PID 2.
 */
static int init_signals(struct spawn_ctx *ctx, sigset_t *waited)
{
	struct sigaction act;

	sigemptyset(waited);
	sigaddset(waited, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded_signals); i++)
		sigaddset(waited, forwarded_signals[i]);
	if (sigprocmask(SIG_BLOCK, waited, &ctx->old_mask) < 0)
		return -1;

	memset(&act, 0, sizeof(act));
	sigemptyset(&act.sa_mask);
	act.sa_handler = unused_handler;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(waited, sig) && sigaction(sig, &act, &ctx->old_act[sig]) < 0)
			return -1;
	return 0;
}

static void restore_signals(const struct spawn_ctx *ctx, const sigset_t *waited)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(waited, sig))
			sigaction(sig, &ctx->old_act[sig], NULL);
	sigprocmask(SIG_SETMASK, &ctx->old_mask, NULL);
}

/* Close every fd but stdio, the keep_fds and the init's end of the socket. */
static int close_other_fds(const struct spawn_ctx *ctx)
{
	int keep[NSINIT_MAX_KEEP_FDS + 4];
	int n = 0;

	keep[n++] = 0;
	keep[n++] = 1;
	keep[n++] = 2;
	keep[n++] = ctx->sock[1];
	for (int i = 0; i < ctx->cfg->n_keep_fds; i++)
		keep[n++] = ctx->cfg->keep_fds[i];
	int r = close_fds_except(keep, n);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

static int exit_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static _Noreturn void child_main(struct spawn_ctx *ctx, const sigset_t *waited, const char *comm)
{
	close(ctx->sock[1]);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	restore_signals(ctx, waited);
	_exit(ctx->child_fn(ctx->arg));
}

/* The init's life once PID 2 runs: reap everything, pass signals on, follow PID 2 out. */
static _Noreturn void init_serve(const sigset_t *waited)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(waited, &si);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(2, sig);
			continue;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);

			if (pid <= 0)
				break;
			if (pid == 2)
				_exit(exit_code(status));
		}
	}
}

static _Noreturn void init_main(struct spawn_ctx *ctx)
{
	const struct nsinit_cfg *cfg = ctx->cfg;
	pid_t set_tid[1] = {2};
	char comm[17] = "", ack;
	sigset_t waited;
	pid_t child;
	ssize_t n;

	ferry_log_level = -1;
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	prctl(PR_SET_NAME, "ferry-init", 0, 0, 0);
	if (init_signals(ctx, &waited) < 0)
		fail_step(ctx, STEP_SIGNALS);
	if (close_other_fds(ctx) < 0)
		fail_step(ctx, STEP_CLOSE_FDS);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail_step(ctx, STEP_MOUNT_PRIVATE);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		fail_step(ctx, STEP_MOUNT_PROC);

	child = raw_clone3(0, set_tid, 1);
	if (child < 0)
		fail_step(ctx, STEP_CLONE_CHILD);
	if (child == 0)
		child_main(ctx, &waited, comm);

	/* the keep_fds were for PID 2; holding them would hide its exec from the caller */
	for (int i = 0; i < cfg->n_keep_fds; i++) {
		int fd = cfg->keep_fds[i];

		if (fd > 2 && fd != ctx->sock[1])
			close(fd);
	}
	send_msg(ctx->sock[1], MSG_READY, 0, 0);
	do
		n = read(ctx->sock[1], &ack, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		/* the caller died or gave up before it knew PID 2: leave nothing behind */
		kill(2, SIGKILL);
		_exit(127);
	}
	if (chdir("/") < 0) {
		/* the old cwd only pins a directory */
	}
	/* its EOF tells the caller the init is clean */
	close(ctx->sock[1]);
	init_serve(&waited);
}

/*
 * The time namespace is made in the caller (unshare(CLONE_NEWTIME) changes
 * only the namespace its children get), the init cloned into it as the
 * caller's child, and the caller's children's namespace put back: one process
 * fewer to create than with a helper fork, which costs a millisecond here.
 */
static pid_t clone_init(struct spawn_ctx *ctx, struct ferry_err *err)
{
	int orig = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	pid_t init = -1;

	if (orig < 0)
		return ferry_fail_errno(err, "start ferry init: open our time namespace");
	if (unshare(CLONE_NEWTIME) < 0) {
		ferry_fail_errno(err, "start ferry init: %s", step_name(STEP_UNSHARE_TIME));
		goto out;
	}
	if (ctx->cfg->set_time_offsets && write_time_offsets(ctx->cfg) < 0) {
		ferry_fail_errno(err, "start ferry init: %s", step_name(STEP_TIME_OFFSETS));
		goto back;
	}
	init = raw_clone3(CLONE_NEWPID | CLONE_NEWNS, NULL, 0);
	if (init == 0) {
		close(ctx->sock[0]);
		init_main(ctx);
	}
	if (init < 0)
		ferry_fail_errno(err, "start ferry init: %s", step_name(STEP_CLONE_INIT));
back:
	/* EUSERS if we have threads: then later children would share the new
	 * namespace, and the callers create none */
	if (setns(orig, CLONE_NEWTIME) < 0)
		pr_debug("start ferry init: back to our time namespace: %s", strerror(errno));
out:
	close(orig);
	return init;
}

/*
 * Read the init's reports until READY, or a step failed. After a failure keep
 * reading to EOF (the init has exited by then); the caller reaps the init.
 */
static int collect_reports(int fd, struct ferry_err *err)
{
	struct nsinit_msg m;
	bool ready = false, failed = false;
	int r;

	while (failed || !ready) {
		r = read_all(fd, &m, sizeof(m));
		if (r < 0 && failed)
			return -err->code;
		if (r == -EIO)
			return ferry_fail(err, EIO, "start ferry init: it ended without a report");
		if (r < 0)
			return ferry_fail(err, -r, "start ferry init: read its report");
		switch (m.kind) {
		case MSG_READY:
			ready = true;
			break;
		case MSG_FAIL:
			if (!failed)
				ferry_fail(err, m.code, "start ferry init: %s", step_name(m.step));
			failed = true;
			break;
		}
	}
	return 0;
}

/* The outer pid of PID 2: the only child of the init, which reaps nothing before the ack. */
static int find_child(pid_t init, pid_t *child, struct ferry_err *err)
{
	_cleanup_free_ char *children = NULL, *status = NULL;
	char path[64];
	const char *nspid;
	long pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", init, init);
	if (read_file(path, &children, NULL, err) < 0)
		return ferry_wrap(err, "find PID 2 of ferry init %d", init);
	if (sscanf(children, "%ld", &pid) != 1)
		return ferry_fail(err, ESRCH, "find PID 2 of ferry init %d: it has no child", init);

	/* make sure it really is PID 2 inside: NSpid ends with " 2" */
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (read_file(path, &status, NULL, err) < 0)
		return ferry_wrap(err, "check PID 2 of ferry init %d", init);
	nspid = strstr(status, "\nNSpid:");
	if (!nspid)
		return ferry_fail(err, ENOTSUP, "check PID 2 of ferry init %d: no NSpid in %s",
				  init, path);
	nspid = strchr(nspid + 1, '\n');
	if (!nspid || nspid - status < 2 || strncmp(nspid - 2, "\t2", 2) != 0)
		return ferry_fail(err, EPROTO, "check PID 2 of ferry init %d: pid %ld is not 2 inside",
				  init, pid);
	*child = pid;
	return 0;
}

/*
 * After the ack the init closes its end of the socket (PID 2 closed its
 * copy first thing): EOF means the init holds nothing of ours any more.
 */
static void wait_report_closed(int fd)
{
	char buf[sizeof(struct nsinit_msg)];
	ssize_t n;

	do
		n = read(fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int nsinit_spawn(const struct nsinit_cfg *cfg, int (*child_fn)(void *arg), void *arg,
		 pid_t *init_pid, pid_t *child_pid, struct ferry_err *err)
{
	struct spawn_ctx ctx;
	pid_t init = 0, child = 0;
	char ack = 'A';
	int r;

	if (cfg->n_keep_fds < 0 || cfg->n_keep_fds > NSINIT_MAX_KEEP_FDS)
		return ferry_fail(err, EINVAL, "start ferry init: %d fds to keep (at most %d)",
				  cfg->n_keep_fds, NSINIT_MAX_KEEP_FDS);
	for (int i = 0; i < cfg->n_keep_fds; i++)
		if (cfg->keep_fds[i] < 0)
			return ferry_fail(err, EBADF, "start ferry init: fd to keep %d",
					  cfg->keep_fds[i]);

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.child_fn = child_fn;
	ctx.arg = arg;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctx.sock) < 0)
		return ferry_fail_errno(err, "start ferry init: socketpair");

	init = clone_init(&ctx, err);
	close(ctx.sock[1]);
	r = init < 0 ? -err->code : collect_reports(ctx.sock[0], err);
	if (init < 0)
		init = 0;
	if (r == 0)
		r = find_child(init, &child, err);
	if (r == 0 && send(ctx.sock[0], &ack, 1, MSG_NOSIGNAL) != 1)
		r = ferry_fail_errno(err, "start ferry init %d: release it", init);
	if (r == 0)
		wait_report_closed(ctx.sock[0]);
	close(ctx.sock[0]);
	if (r < 0) {
		if (init > 0) {
			/* SIGKILL to the init takes its whole PID namespace along */
			kill(init, SIGKILL);
			reap(init);
		}
		return r;
	}
	pr_debug("ferry init %d runs PID 2 as %d", init, child);
	*init_pid = init;
	*child_pid = child;
	return 0;
}

static int parse_clock(const char *name)
{
	if (!strcmp(name, "monotonic") || !strcmp(name, "1"))
		return 1;
	if (!strcmp(name, "boottime") || !strcmp(name, "7"))
		return 7;
	return -1;
}

int nsinit_read_time_offsets(pid_t pid, int64_t *mono_ns, int64_t *boot_ns, struct ferry_err *err)
{
	_cleanup_free_ char *buf = NULL;
	char path[64], *line, *save = NULL;
	bool have_mono = false, have_boot = false;

	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	if (read_file(path, &buf, NULL, err) < 0)
		return ferry_wrap(err, "time offsets of pid %d", pid);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[16];
		long long sec;
		long nsec;

		if (sscanf(line, "%15s %lld %ld", name, &sec, &nsec) != 3 || nsec < 0 ||
		    nsec >= NSEC_PER_SEC)
			return ferry_fail(err, EINVAL, "time offsets of pid %d: bad line '%s'", pid,
					  line);
		switch (parse_clock(name)) {
		case 1:
			*mono_ns = sec * NSEC_PER_SEC + nsec;
			have_mono = true;
			break;
		case 7:
			*boot_ns = sec * NSEC_PER_SEC + nsec;
			have_boot = true;
			break;
		}
	}
	if (!have_mono || !have_boot)
		return ferry_fail(err, EINVAL, "time offsets of pid %d: %s lacks a clock", pid,
				  path);
	return 0;
}
