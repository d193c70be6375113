/*
 * ferry restore -D DIR: recreate a process from its images.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "cli/cli.h"
#include "lazy/lazy.h"
#include "restore/restore.h"
#include "core/image.h"

static const char help[] =
	"usage: ferry restore -D DIR [-d|--restore-detached] [--pidfile FILE] [--shell-job]\n"
	"                     [--lazy-pages [--page-server --address SRC --port N\n"
	"                     [--auth-key FILE] [--prefetch-after MS]]] [--wait-images SECS]\n"
	"                     [-v 0-4] [-o LOG]\n"
	"\n"
	"Recreate the process saved in the image directory DIR, with its pid.\n"
	"Without -d, ferry stays its parent, waits, and exits with its exit status\n"
	"(128+N if it was killed by signal N). If the restore fails, nothing is left.\n"
	"\n"
	"  -D, --images-dir DIR      the images\n"
	"  -d, --restore-detached    return once the process runs\n"
	"      --pidfile FILE        write its pid (as seen here) to FILE\n"
	"  -j, --shell-job           give it this terminal (for dumps made with --shell-job)\n"
	"      --lazy-pages          post-copy: run at once; its private memory comes from\n"
	"                            `ferry lazy-pages -D DIR`, which must be running\n"
	"      --page-server         with --lazy-pages: start that daemon here, fetching\n"
	"                            the pages from the source at --address and --port\n"
	"                            (the shortest downtime: one command, no handshake)\n"
	"      --auth-key FILE, --prefetch-after MS   passed on to the daemon\n"
	"      --wait-images SECS    start before the dump has finished: wait up to SECS\n"
	"                            seconds for DIR to be complete, then restore at once\n"
	"                            (ferry's start is then not part of the downtime)\n"
	"  -v N                      log level 0 (errors) .. 4 (trace)\n"
	"  -o, --log-file FILE       write the log to FILE\n";

int cmd_restore(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	struct restore_result res;
	int r, status;

	r = opts_parse("restore", argc, argv,
		       OPT_DIR | OPT_DETACHED | OPT_PIDFILE | OPT_SHELL_JOB | OPT_LAZY |
			       OPT_PAGE_SERVER | OPT_ADDRESS | OPT_PORT | OPT_AUTH_KEY |
			       OPT_PREFETCH_AFTER | OPT_WAIT_IMAGES,
		       help, &o);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.dir || o.argc) {
		fprintf(stderr, "ferry restore: needs -D DIR (see ferry restore --help)\n");
		return 2;
	}
	if (o.page_server && (!o.lazy || !o.port)) {
		fprintf(stderr, "ferry restore: --page-server needs --lazy-pages and --port\n");
		return 2;
	}
	struct restore_opts ro = {.dir = o.dir, .shell_job = o.shell_job, .detached = o.detached};
	struct lazy_client lc = {.fd = -1};
	ferry_err_clear(&err);
	/* a daemon of our own is started first and waits for the images too, a
	 * second longer than we do: our giving up ends its wait */
	int wait_ms = o.wait_images_s * 1000;
	if (o.lazy && o.page_server) {
		struct lazy_daemon_opts lo = {.dir = o.dir, .remote = true,
					      .address = o.address ? o.address : "127.0.0.1",
					      .port = o.port, .auth_key = o.auth_key, .ready_fd = -1,
					      .client_fd = -1, .prefetch_after_ms = o.prefetch_after_ms,
					      .wait_images_ms = wait_ms ? wait_ms + 1000 : 0};
		if (lazy_client_spawn(&lo, &lc, &err) < 0) {
			cli_error("restore", &err);
			return 1;
		}
	}
	if (wait_ms && img_wait_complete(o.dir, wait_ms, -1, &err) < 0) {
		cli_error("restore", &err);
		return 1;
	}
	if (o.lazy) {
		if (!o.page_server && lazy_client_connect(o.dir, &lc, &err) < 0) {
			cli_error("restore", &err);
			return 1;
		}
		ro.lazy = true;
		ro.lazy_handover = lazy_client_handover;
		ro.lazy_ctx = &lc;
	}
	if (ferry_restore(&ro, &res, &err) < 0) {
		cli_error("restore", &err);
		return 1;
	}
	if (o.lazy && lazy_client_running(&lc, res.pid, &err) < 0) {
		cli_error("restore", &err);
		kill(res.pid, SIGKILL);
		return 1;
	}
	if (o.pidfile && cli_write_pidfile("restore", o.pidfile, res.pid) < 0) {
		kill(res.pid, SIGKILL);
		return 1;
	}
	if (o.detached)
		return 0;
	/* stay the parent: the process's status becomes ours */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(res.waitee, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
