/*
 * ferry dump -t PID -D DIR: checkpoint a process.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "dump/dump.h"

static const char help[] =
	"usage: ferry dump -t PID -D DIR [--leave-running] [--shell-job]\n"
	"                  [--prev-images-dir DIR] [--track-mem]\n"
	"                  [--page-server --address ADDR --port N [--auth-key FILE]]\n"
	"                  [--lazy-pages --port N [--address ADDR]] [-v 0-4] [-o LOG]\n"
	"\n"
	"Freeze process PID, save its complete state into the image directory DIR\n"
	"(created if needed) and kill it; with --leave-running it continues instead.\n"
	"If the dump fails, the process keeps running exactly as before.\n"
	"\n"
	"  -t, --tree PID        the process to dump\n"
	"  -D, --images-dir DIR  where the images go\n"
	"      --leave-running   let the process run on after the dump\n"
	"  -j, --shell-job       the process uses the terminal (restore gives it the caller's)\n"
	"      --prev-images-dir P  a pre-dump round (relative to DIR): save only pages\n"
	"                        written since it (the default: the round that left the\n"
	"                        dirty tracking armed)\n"
	"      --track-mem       accepted for CRIU compatibility (tracking is automatic)\n"
	"      --page-server     send the memory to `ferry page-server` at --address/--port\n"
	"      --lazy-pages      post-copy: keep the private memory here, frozen, and serve\n"
	"                        it on --port to `ferry lazy-pages`; the process is killed\n"
	"                        once the destination runs and has every page, resumed if\n"
	"                        the destination never commits\n"
	"      --auth-key FILE   pre-shared key for the page server\n"
	"  -v N                  log level 0 (errors) .. 4 (trace)\n"
	"  -o, --log-file FILE   write the log to FILE\n";

int cmd_dump(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	int r;

	r = opts_parse("dump", argc, argv,
		       OPT_DIR | OPT_PID | OPT_LEAVE_RUNNING | OPT_SHELL_JOB | OPT_PREV |
			       OPT_TRACK_MEM | OPT_NO_TRACK | OPT_PAGE_SERVER | OPT_ADDRESS |
			       OPT_PORT | OPT_AUTH_KEY | OPT_LAZY,
		       help, &o);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.pid || !o.dir || o.argc) {
		fprintf(stderr, "ferry dump: needs -t PID and -D DIR (see ferry dump --help)\n");
		return 2;
	}
	struct dump_opts d = {
		.pid = o.pid,
		.dir = o.dir,
		.leave_running = o.leave_running,
		.shell_job = o.shell_job,
		.prev_dir = o.prev_dir,
		.track_mem = o.track_mem,
		.no_track = o.no_track,
		.page_server = o.page_server,
		.address = o.address,
		.port = o.port,
		.auth_key = o.auth_key,
		.lazy = o.lazy,
	};
	if ((o.page_server || o.lazy) && !o.port) {
		fprintf(stderr, "ferry dump: --page-server and --lazy-pages need --port\n");
		return 2;
	}
	if (o.page_server && o.lazy) {
		fprintf(stderr, "ferry dump: --page-server and --lazy-pages do not go together yet\n");
		return 2;
	}
	ferry_err_clear(&err);
	if (ferry_dump(&d, &err) < 0) {
		cli_error("dump", &err);
		return 1;
	}
	return 0;
}

static const char pre_help[] =
	"usage: ferry pre-dump -t PID -D DIR [--prev-images-dir P] [--track-mem]\n"
	"                      [--no-dirty-tracking] [-v 0-4] [-o LOG]\n"
	"\n"
	"Copy the memory of process PID into DIR while it keeps running (it is frozen\n"
	"only to find the pages to copy). The first round arms dirty tracking\n"
	"(userfaultfd write-protect + PAGEMAP_SCAN); each later round saves only the\n"
	"pages written since its parent round and records the rest as holes. A final\n"
	"`ferry dump --prev-images-dir` ends the chain; restore follows it.\n"
	"\n"
	"  -t, --tree PID           the process\n"
	"  -D, --images-dir DIR     where this round's images go\n"
	"      --prev-images-dir P  the parent round (relative to DIR); default: the\n"
	"                           round that left the tracking armed\n"
	"      --track-mem          accepted for CRIU compatibility (always on)\n"
	"      --no-dirty-tracking  copy everything every round (no holes)\n"
	"      --page-server --address ADDR --port N [--auth-key FILE]\n"
	"                           send the memory to `ferry page-server`\n"
	"  -v N, -o FILE            log level and log file\n";

int cmd_pre_dump(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	int r;

	r = opts_parse("pre-dump", argc, argv,
		       OPT_DIR | OPT_PID | OPT_PREV | OPT_TRACK_MEM | OPT_NO_TRACK |
			       OPT_PAGE_SERVER | OPT_ADDRESS | OPT_PORT | OPT_AUTH_KEY,
		       pre_help, &o);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.pid || !o.dir || o.argc) {
		fprintf(stderr, "ferry pre-dump: needs -t PID and -D DIR (see ferry pre-dump --help)\n");
		return 2;
	}
	struct dump_opts d = {
		.pid = o.pid,
		.dir = o.dir,
		.pre_dump = true,
		.leave_running = true,
		.prev_dir = o.prev_dir,
		.track_mem = true,
		.no_track = o.no_track,
		.page_server = o.page_server,
		.address = o.address,
		.port = o.port,
		.auth_key = o.auth_key,
	};
	if (o.page_server && !o.port) {
		fprintf(stderr, "ferry pre-dump: --page-server needs --port\n");
		return 2;
	}
	ferry_err_clear(&err);
	if (ferry_dump(&d, &err) < 0) {
		cli_error("pre-dump", &err);
		return 1;
	}
	return 0;
}

static const char untrack_help[] =
	"usage: ferry untrack -t PID [-v 0-4] [-o LOG]\n"
	"\n"
	"Stop the dirty tracking that pre-dump rounds armed for PID: its keeper exits\n"
	"and the kernel drops every write-protect registration. Later rounds copy\n"
	"everything again until tracking is armed anew.\n";

int cmd_untrack(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	int r = opts_parse("untrack", argc, argv, OPT_PID, untrack_help, &o);

	if (r)
		return r > 0 ? 0 : 2;
	if (!o.pid || o.argc) {
		fprintf(stderr, "ferry untrack: needs -t PID (see ferry untrack --help)\n");
		return 2;
	}
	ferry_err_clear(&err);
	if (dump_untrack(o.pid, &err) < 0) {
		cli_error("untrack", &err);
		return 1;
	}
	return 0;
}
