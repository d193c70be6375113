/*
 * ferry lazy-pages -D DIR: the destination's daemon of a lazy restore.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "lazy/lazy.h"

static const char help[] =
	"usage: ferry lazy-pages -D DIR [--page-server --address SRC --port N]\n"
	"                        [--auth-key FILE] [--prefetch-after MS] [-d] [--pidfile FILE]\n"
	"                        [-v 0-4] [-o LOG]\n"
	"\n"
	"Serve the memory of a lazy restore (`ferry restore -D DIR --lazy-pages`): each\n"
	"page the restored process touches is fetched on its fault, the rest in the\n"
	"background; exits when every page has arrived. With --page-server the pages\n"
	"come from the source (`ferry dump --lazy-pages` or `ferry page-server\n"
	"--lazy-pages`), else from DIR itself. If this daemon dies before all pages\n"
	"arrived, its guardian kills the restored process.\n"
	"\n"
	"  -D, --images-dir DIR  the images of the process (its pagemap says what is lazy)\n"
	"      --page-server     fetch pages from the source at --address and --port\n"
	"      --auth-key FILE   pre-shared key of the source\n"
	"      --prefetch-after MS  start the background transfer MS milliseconds after\n"
	"                        the process runs (default 0); until then pages only\n"
	"                        come on faults\n"
	"  -d, --daemon          return once the daemon is ready\n"
	"      --pidfile FILE    write its pid to FILE\n"
	"  -v N, -o FILE         log level and log file\n";

int cmd_lazy_pages(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	int r;

	r = opts_parse("lazy-pages", argc, argv,
		       OPT_DIR | OPT_PAGE_SERVER | OPT_ADDRESS | OPT_PORT | OPT_AUTH_KEY |
			       OPT_DETACHED | OPT_PIDFILE | OPT_PREFETCH_AFTER,
		       help, &o);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.dir || o.argc || (o.page_server && !o.port)) {
		fprintf(stderr, "ferry lazy-pages: needs -D DIR (and --port with --page-server)\n");
		return 2;
	}
	struct lazy_daemon_opts lo = {.dir = o.dir, .remote = o.page_server,
				      .address = o.address ? o.address : "127.0.0.1",
				      .port = o.port, .auth_key = o.auth_key, .ready_fd = -1, .client_fd = -1,
				      .prefetch_after_ms = o.prefetch_after_ms};
	if (o.detached) {
		r = cli_daemonize("lazy-pages", o.pidfile, &lo.ready_fd);
		if (r)
			return r > 0 ? 0 : 1;
	} else if (o.pidfile && cli_write_pidfile("lazy-pages", o.pidfile, getpid()) < 0) {
		return 1;
	}
	ferry_err_clear(&err);
	if (lazy_daemon(&lo, &err) < 0) {
		cli_error("lazy-pages", &err);
		return 1;
	}
	return 0;
}
