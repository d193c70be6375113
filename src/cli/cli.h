/*
 * The command line: one file per command, shared options parsed in opts.c.
 * Each command returns the process exit status; only src/cli/ prints errors.
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

enum opt_bit {
	OPT_DIR = 1 << 0,          /* -D, --images-dir DIR */
	OPT_PID = 1 << 1,          /* -t, --tree PID */
	OPT_LEAVE_RUNNING = 1 << 2,
	OPT_SHELL_JOB = 1 << 3,    /* -j, --shell-job */
	OPT_DETACHED = 1 << 4,     /* -d, --restore-detached / --daemon */
	OPT_PIDFILE = 1 << 5,
	OPT_PREV = 1 << 6,         /* --prev-images-dir */
	OPT_TRACK_MEM = 1 << 7,
	OPT_ADDRESS = 1 << 8,
	OPT_PORT = 1 << 9,
	OPT_PAGE_SERVER = 1 << 10,
	OPT_LAZY = 1 << 11,
	OPT_JSON = 1 << 12,
	OPT_NO_TRACK = 1 << 13,    /* --no-dirty-tracking */
	OPT_AUTH_KEY = 1 << 14,
	OPT_PREFETCH_AFTER = 1 << 15,
	OPT_WAIT_IMAGES = 1 << 16, /* --wait-images SECONDS */
};

struct ferry_opts {
	const char *dir;
	pid_t pid;
	bool leave_running;
	bool shell_job;
	bool detached;
	const char *pidfile;
	const char *prev_dir;
	bool track_mem;
	const char *address;
	int port;
	bool page_server;
	bool lazy;
	bool json;
	bool no_track;
	const char *auth_key;
	int prefetch_after_ms;
	int wait_images_s;
	int verbosity;
	const char *log_file;
	/* non-option arguments */
	int argc;
	char **argv;
};

/*
 * Parse argv for command `cmd` allowing the options in `allowed` (plus -v, -o,
 * -h). Prints `help` and returns 1 for --help (caller exits 0); returns -1
 * after printing a one-line error for bad usage (caller exits 2); 0 otherwise.
 */
int opts_parse(const char *cmd, int argc, char **argv, unsigned allowed, const char *help,
	       struct ferry_opts *o);

/* Print "ferry CMD: MESSAGE" on stderr (and in the log if -o). */
void cli_error(const char *cmd, const struct ferry_err *err);

/* Write a pid file (relative to the caller's cwd); returns 0 or -errno after printing. */
int cli_write_pidfile(const char *cmd, const char *path, pid_t pid);

/*
 * -d: fork a daemon. The parent waits until the daemon writes a byte to
 * *ready_fd, writes pidfile, and gets 1 (exit 0) or -1 (exit 1, message
 * printed); the daemon gets 0, with stdio on /dev/null (stderr too when
 * logging to a file) and *ready_fd to write once it is ready.
 */
int cli_daemonize(const char *cmd, const char *pidfile, int *ready_fd);

int cmd_check(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_pre_dump(int argc, char **argv);
int cmd_untrack(int argc, char **argv);
int cmd_lazy_pages(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_page_server(int argc, char **argv);

#endif
