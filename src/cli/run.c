/*
 * ferry run: start a command ready to be moved.
 *
 * The command runs detached as PID 2 of fresh PID, mount and time namespaces,
 * under a ferry init at PID 1 (see core/nsinit.h). ferry run forks a launcher
 * that starts a new session and spawns the init from there, so the init ends
 * up a daemon once the launcher exits:
 *
 *   ferry run --waits--> launcher (setsid) --> ferry-init (PID 1) --> CMD (PID 2)
 *
 * CMD (PID 2) leads a session of its own. The launcher learns whether CMD was
 * exec'd from a close-on-exec pipe: EOF means the exec happened, a report
 * means it failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/nsinit.h"
#include "core/util.h"

static const char run_help[] =
	"usage: ferry run [--pidfile FILE] [-vN] [-o LOG] -- CMD [ARGS...]\n"
	"\n"
	"Start CMD detached (in a new session, stdin from /dev/null, stdout and stderr\n"
	"inherited) as PID 2 of new PID, mount and time namespaces, under a small\n"
	"ferry init at PID 1 that reaps orphans and forwards SIGTERM, SIGINT, SIGHUP,\n"
	"SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT and SIGWINCH to CMD. The init exits with\n"
	"CMD's exit status. ferry run returns once CMD has been exec'd.\n"
	"\n"
	"options:\n"
	"  --pidfile FILE        write CMD's pid, as seen from here, to FILE\n"
	"  -vN, --verbosity=N    log level: 0 errors .. 4 trace (-v alone: 3)\n"
	"  -o, --log-file LOG    write the log to LOG\n"
	"  -h, --help            show this help\n";

struct run_cmd {
	char **argv;
	int exec_err_fd; /* write end of the exec pipe */
};

/* What PID 2 reports when it cannot become CMD. */
struct exec_failure {
	int step; /* 0: setsid, 1: exec */
	int code; /* errno */
};

/*
 * PID 2: lead a session of its own (so that CMD's kill(0, ...) reaches
 * neither the init nor anyone else), then become CMD, or tell the launcher
 * why not.
 */
static int exec_cmd(void *arg)
{
	const struct run_cmd *cmd = arg;
	struct exec_failure f = {0, 0};

	if (setsid() < 0) {
		f.code = errno;
	} else {
		execvp(cmd->argv[0], cmd->argv);
		f.step = 1;
		f.code = errno;
	}
	/* if the launcher is gone, the exit status is all that is left */
	write_all(cmd->exec_err_fd, &f, sizeof(f));
	return 127;
}

static void stop_init(pid_t init)
{
	kill(init, SIGKILL);
	while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Wait for CMD's exec: 0 once it happened, or -errno with err filled. */
static int wait_exec(int fd, const char *name, struct ferry_err *err)
{
	struct exec_failure f;
	ssize_t n;

	do
		n = read(fd, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0)
		return ferry_fail_errno(err, "wait for the exec of %s", name);
	if (n != sizeof(f))
		return ferry_fail(err, EIO, "wait for the exec of %s: short report", name);
	if (f.step == 0)
		return ferry_fail(err, f.code, "cannot run %s: new session", name);
	return ferry_fail(err, f.code, "cannot run %s", name);
}

/* The launcher: a fresh session, the init and CMD. Returns the exit status of ferry run. */
static int launch(const struct ferry_opts *o)
{
	struct nsinit_cfg cfg = {0};
	struct run_cmd cmd = {.argv = o->argv};
	struct ferry_err err;
	int exec_pipe[2], devnull, r;
	pid_t init, child;

	if (setsid() < 0) {
		ferry_fail_errno(&err, "new session");
		goto fail;
	}
	devnull = open("/dev/null", O_RDONLY);
	if (devnull < 0 || dup2(devnull, 0) < 0) {
		ferry_fail_errno(&err, "stdin from /dev/null");
		goto fail;
	}
	if (devnull != 0)
		close(devnull);
	if (pipe2(exec_pipe, O_CLOEXEC) < 0) {
		ferry_fail_errno(&err, "pipe");
		goto fail;
	}

	cmd.exec_err_fd = exec_pipe[1];
	cfg.keep_fds[cfg.n_keep_fds++] = exec_pipe[1];
	r = nsinit_spawn(&cfg, exec_cmd, &cmd, &init, &child, &err);
	close(exec_pipe[1]);
	if (r < 0) {
		close(exec_pipe[0]);
		ferry_wrap(&err, "start %s", o->argv[0]);
		goto fail;
	}
	r = wait_exec(exec_pipe[0], o->argv[0], &err);
	close(exec_pipe[0]);
	if (r < 0) {
		/* PID 2 exits 127 after a failed exec and the init follows it; make sure */
		stop_init(init);
		goto fail;
	}
	if (o->pidfile && cli_write_pidfile("run", o->pidfile, child) < 0) {
		stop_init(init);
		return 1;
	}
	pr_info("%s runs as pid %d (2 inside) under ferry init %d", o->argv[0], child, init);
	return 0;

fail:
	cli_error("run", &err);
	return 1;
}

int cmd_run(int argc, char **argv)
{
	struct ferry_opts o;
	int r, status;
	pid_t launcher;

	r = opts_parse("run", argc, argv, OPT_PIDFILE, run_help, &o);
	if (r > 0)
		return 0;
	if (r < 0)
		return 2;
	if (o.argc < 1) {
		fprintf(stderr, "ferry run: no command given (see ferry run --help)\n");
		return 2;
	}

	fflush(NULL);
	launcher = fork();
	if (launcher < 0) {
		perror("ferry run: fork");
		return 1;
	}
	if (launcher == 0) {
		r = launch(&o);
		fflush(NULL);
		_exit(r);
	}
	while (waitpid(launcher, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("ferry run: wait for the launcher");
			return 1;
		}
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "ferry run: launcher killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}
