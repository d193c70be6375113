/*
 * ferry dump -t PID -D DIR: checkpoint a process.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "dump/dump.h"

static const char help[] =
	"usage: ferry dump -t PID -D DIR [--leave-running] [--shell-job] [-v 0-4] [-o LOG]\n"
	"\n"
	"Freeze process PID, save its complete state into the image directory DIR\n"
	"(created if needed) and kill it; with --leave-running it continues instead.\n"
	"If the dump fails, the process keeps running exactly as before.\n"
	"\n"
	"  -t, --tree PID        the process to dump\n"
	"  -D, --images-dir DIR  where the images go\n"
	"      --leave-running   let the process run on after the dump\n"
	"  -j, --shell-job       the process uses the terminal (restore gives it the caller's)\n"
	"  -v N                  log level 0 (errors) .. 4 (trace)\n"
	"  -o, --log-file FILE   write the log to FILE\n";

int cmd_dump(int argc, char **argv)
{
	struct ferry_opts o;
	struct ferry_err err;
	int r;

	r = opts_parse("dump", argc, argv, OPT_DIR | OPT_PID | OPT_LEAVE_RUNNING | OPT_SHELL_JOB,
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
	};
	ferry_err_clear(&err);
	if (ferry_dump(&d, &err) < 0) {
		cli_error("dump", &err);
		return 1;
	}
	return 0;
}
