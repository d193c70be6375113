#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

enum {
	LO_LEAVE_RUNNING = 256,
	LO_PIDFILE,
	LO_PREV,
	LO_TRACK_MEM,
	LO_ADDRESS,
	LO_PORT,
	LO_PAGE_SERVER,
	LO_LAZY,
	LO_JSON,
	LO_NO_TRACK,
	LO_AUTH_KEY,
	LO_PREFETCH_AFTER,
	LO_WAIT_IMAGES,
};

static const struct option long_opts[] = {
	{"images-dir", required_argument, NULL, 'D'},
	{"tree", required_argument, NULL, 't'},
	{"leave-running", no_argument, NULL, LO_LEAVE_RUNNING},
	{"shell-job", no_argument, NULL, 'j'},
	{"restore-detached", no_argument, NULL, 'd'},
	{"daemon", no_argument, NULL, 'd'},
	{"pidfile", required_argument, NULL, LO_PIDFILE},
	{"prev-images-dir", required_argument, NULL, LO_PREV},
	{"track-mem", no_argument, NULL, LO_TRACK_MEM},
	{"address", required_argument, NULL, LO_ADDRESS},
	{"port", required_argument, NULL, LO_PORT},
	{"page-server", no_argument, NULL, LO_PAGE_SERVER},
	{"lazy-pages", no_argument, NULL, LO_LAZY},
	{"json", no_argument, NULL, LO_JSON},
	{"no-dirty-tracking", no_argument, NULL, LO_NO_TRACK},
	{"auth-key", required_argument, NULL, LO_AUTH_KEY},
	{"prefetch-after", required_argument, NULL, LO_PREFETCH_AFTER},
	{"wait-images", required_argument, NULL, LO_WAIT_IMAGES},
	{"log-file", required_argument, NULL, 'o'},
	{"verbosity", optional_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int bad(const char *cmd, const char *what)
{
	fprintf(stderr, "ferry %s: %s (see ferry %s --help)\n", cmd, what, cmd);
	return -1;
}

static unsigned opt_bit_of(int c)
{
	switch (c) {
	case 'D': return OPT_DIR;
	case 't': return OPT_PID;
	case LO_LEAVE_RUNNING: return OPT_LEAVE_RUNNING;
	case 'j': return OPT_SHELL_JOB;
	case 'd': return OPT_DETACHED;
	case LO_PIDFILE: return OPT_PIDFILE;
	case LO_PREV: return OPT_PREV;
	case LO_TRACK_MEM: return OPT_TRACK_MEM;
	case LO_ADDRESS: return OPT_ADDRESS;
	case LO_PORT: return OPT_PORT;
	case LO_PAGE_SERVER: return OPT_PAGE_SERVER;
	case LO_LAZY: return OPT_LAZY;
	case LO_JSON: return OPT_JSON;
	case LO_NO_TRACK: return OPT_NO_TRACK;
	case LO_AUTH_KEY: return OPT_AUTH_KEY;
	case LO_PREFETCH_AFTER: return OPT_PREFETCH_AFTER;
	case LO_WAIT_IMAGES: return OPT_WAIT_IMAGES;
	default: return 0;
	}
}

int opts_parse(const char *cmd, int argc, char **argv, unsigned allowed, const char *help,
	       struct ferry_opts *o)
{
	char msg[256];
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->verbosity = -1;
	optind = 1;
	opterr = 0;
	/* "+": stop at the first non-option, so `run -- CMD -x` keeps CMD's options */
	const char *shortopts = strcmp(cmd, "run") ? ":D:t:jdo:v::h" : "+:D:t:jdo:v::h";

	while ((c = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
		unsigned bit = opt_bit_of(c);

		if (bit && !(allowed & bit)) {
			snprintf(msg, sizeof(msg), "option %s does not apply to this command",
				 argv[optind - 1]);
			return bad(cmd, msg);
		}
		switch (c) {
		case 'D': o->dir = optarg; break;
		case 't':
			if (parse_int(optarg, 1, 0x7fffffff, &v) < 0)
				return bad(cmd, "-t needs a pid (a positive number)");
			o->pid = v;
			break;
		case LO_LEAVE_RUNNING: o->leave_running = true; break;
		case 'j': o->shell_job = true; break;
		case 'd': o->detached = true; break;
		case LO_PIDFILE: o->pidfile = optarg; break;
		case LO_PREV: o->prev_dir = optarg; break;
		case LO_TRACK_MEM: o->track_mem = true; break;
		case LO_ADDRESS: o->address = optarg; break;
		case LO_PORT:
			if (parse_int(optarg, 1, 65535, &v) < 0)
				return bad(cmd, "--port needs a number from 1 to 65535");
			o->port = v;
			break;
		case LO_PAGE_SERVER: o->page_server = true; break;
		case LO_LAZY: o->lazy = true; break;
		case LO_JSON: o->json = true; break;
		case LO_NO_TRACK: o->no_track = true; break;
		case LO_AUTH_KEY: o->auth_key = optarg; break;
		case LO_PREFETCH_AFTER:
			if (parse_int(optarg, 0, 3600000, &v) < 0)
				return bad(cmd, "--prefetch-after needs milliseconds (0 to 3600000)");
			o->prefetch_after_ms = v;
			break;
		case LO_WAIT_IMAGES:
			if (parse_int(optarg, 1, 86400, &v) < 0)
				return bad(cmd, "--wait-images needs seconds (1 to 86400)");
			o->wait_images_s = v;
			break;
		case 'o': o->log_file = optarg; break;
		case 'v':
			if (!optarg && optind < argc && argv[optind][0] >= '0' &&
			    argv[optind][0] <= '4' && !argv[optind][1]) {
				o->verbosity = argv[optind++][0] - '0'; /* -v N */
			} else if (!optarg) {
				o->verbosity = o->verbosity < 0 ? 3 : o->verbosity + 1;
			} else if (optarg[0] == 'v') {
				o->verbosity = 2 + (int)strlen(optarg);
			} else if (parse_int(optarg, 0, 4, &v) == 0) {
				o->verbosity = v;
			} else {
				return bad(cmd, "-v takes a level from 0 to 4");
			}
			break;
		case 'h': fputs(help, stdout); return 1;
		case ':':
			snprintf(msg, sizeof(msg), "option %s needs an argument", argv[optind - 1]);
			return bad(cmd, msg);
		default:
			snprintf(msg, sizeof(msg), "unknown option %s", argv[optind - 1]);
			return bad(cmd, msg);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	if (o->verbosity >= 0)
		log_set_level(o->verbosity > 4 ? 4 : o->verbosity);
	if (o->log_file) {
		int r = log_open(o->log_file);
		if (r < 0) {
			snprintf(msg, sizeof(msg), "cannot open log file %s: %s", o->log_file,
				 strerror(-r));
			return bad(cmd, msg);
		}
		if (o->verbosity < 0)
			log_set_level(LOG_INFO);
	}
	return 0;
}

void cli_error(const char *cmd, const struct ferry_err *err)
{
	fprintf(stderr, "ferry %s: %s\n", cmd, err->msg);
	if (log_to_file())
		log_msg(LOG_ERR, "%s: %s", cmd, err->msg);
}

int cli_write_pidfile(const char *cmd, const char *path, pid_t pid)
{
	struct ferry_err err;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", pid);

	if (write_file_atomic(path, buf, n, &err) < 0) {
		cli_error(cmd, &err);
		return -1;
	}
	return 0;
}

int cli_daemonize(const char *cmd, const char *pidfile, int *ready_fd)
{
	int ready[2];
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0) {
		fprintf(stderr, "ferry %s: pipe: %s\n", cmd, strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ferry %s: fork: %s\n", cmd, strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(ready[1]);
		ssize_t n = read(ready[0], &c, 1);
		close(ready[0]);
		if (n != 1) {
			fprintf(stderr, "ferry %s: the daemon did not start (see its log)\n", cmd);
			return -1;
		}
		if (pidfile && cli_write_pidfile(cmd, pidfile, pid) < 0) {
			kill(pid, SIGTERM);
			return -1;
		}
		return 1;
	}
	close(ready[0]);
	detach_from_terminal(!log_to_file());
	*ready_fd = ready[1];
	return 0;
}
