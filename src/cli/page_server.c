/*
 * ferry page-server -D DIR --port N: receive dumps over the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "lazy/lazy.h"
#include "net/page_server.h"

static const char help[] =
	"usage: ferry page-server -D DIR --port N [--address ADDR] [-d] [--pidfile FILE]\n"
	"                         [--auth-key FILE] [--lazy-pages] [-v 0-4] [-o LOG]\n"
	"\n"
	"Receive the memory of dumps and pre-dumps sent with `ferry dump --page-server`\n"
	"and write it into image directories under DIR, named like the client's (DIR/d1,\n"
	"DIR/d2, ...). Serves any number of sessions, one after another or at once; a\n"
	"directory appears only when its session commits. Holes of incremental dumps\n"
	"are checked against the parent directory held here. Runs until SIGTERM or\n"
	"SIGINT. The protocol is docs/protocol.md.\n"
	"\n"
	"  -D, --images-dir DIR  where the image directories go (created if needed)\n"
	"      --port N          TCP port to listen on\n"
	"      --address ADDR    listen on this address only (default: all)\n"
	"  -d, --daemon          return once the server listens; it runs in the background\n"
	"      --pidfile FILE    write the server's pid to FILE\n"
	"      --lazy-pages      serve the pages of the dump in DIR to a lazy restore\n"
	"                        (`ferry lazy-pages --page-server`) instead; exits when\n"
	"                        the destination has them all\n"
	"      --auth-key FILE   require clients to prove they hold the same key\n"
	"                        (a file of 16 to 4096 bytes, e.g. head -c 32 /dev/urandom)\n"
	"  -v N                  log level 0 (errors) .. 4 (trace)\n"
	"  -o, --log-file FILE   write the log to FILE\n";

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void daemon_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	if (log_to_file())
		dup2(fd, 2);
	close(fd);
}

/* --lazy-pages: the source of a lazy restore is a dump on disk. */
static int serve_lazy_images(const struct ferry_opts *o)
{
	struct lazy_src_opts lo = {.address = o->address, .port = o->port,
				   .auth_key = o->auth_key, .ready_fd = -1, .listen_fd = -1};
	struct ferry_err err;

	ferry_err_clear(&err);
	if (o->detached) {
		int r = cli_daemonize("page-server", o->pidfile, &lo.ready_fd);
		if (r)
			return r > 0 ? 0 : 1;
	} else if (o->pidfile && cli_write_pidfile("page-server", o->pidfile, getpid()) < 0) {
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (lazy_serve_images(o->dir, &lo, &err) < 0) {
		cli_error("page-server", &err);
		return 1;
	}
	return 0;
}

int cmd_page_server(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	struct page_server *ps;
	struct sigaction sa = {.sa_handler = on_stop};
	int r;

	r = opts_parse("page-server", argc, argv,
		       OPT_DIR | OPT_PORT | OPT_ADDRESS | OPT_DETACHED | OPT_PIDFILE | OPT_AUTH_KEY |
			       OPT_LAZY,
		       help, &o);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.dir || !o.port || o.argc) {
		fprintf(stderr,
			"ferry page-server: needs -D DIR and --port N (see ferry page-server --help)\n");
		return 2;
	}
	if (o.lazy)
		return serve_lazy_images(&o);
	struct ps_opts po = {.dir = o.dir, .address = o.address, .port = o.port,
			     .auth_key = o.auth_key};
	ferry_err_clear(&err);
	if (ps_open(&po, &ps, &err) < 0) {
		cli_error("page-server", &err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (o.detached) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			ferry_fail_errno(&err, "fork");
			cli_error("page-server", &err);
			ps_close(ps);
			return 1;
		}
		if (pid > 0) { /* the parent returns once the child's socket listens: it already does */
			r = o.pidfile ? cli_write_pidfile("page-server", o.pidfile, pid) : 0;
			if (r < 0)
				kill(pid, SIGKILL);
			ps_close(ps); /* the parent's copies: the child serves with its own */
			return r < 0 ? 1 : 0;
		}
		setsid();
		daemon_stdio();
	} else if (o.pidfile && cli_write_pidfile("page-server", o.pidfile, getpid()) < 0) {
		ps_close(ps);
		return 1;
	}
	r = ps_serve(ps, &stop_requested, &err);
	if (r < 0)
		cli_error("page-server", &err);
	ps_close(ps);
	return r < 0 ? 1 : 0;
}
