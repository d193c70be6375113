/*
 * dump: freeze a process, save its complete state to an image directory.
 *
 * The target is seized (src/infect), inspected through /proc and injected
 * system calls, its memory streamed through a page-xfer sink, and then
 * killed (or let go with leave_running). The image directory is written under
 * DIR/.partial-PID and its files moved into DIR only once all of them are
 * complete, inventory.img last; on any failure the partial files are removed
 * and the target is cured: registers, memory and fds exactly as before.
 */
#ifndef FERRY_DUMP_H
#define FERRY_DUMP_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool shell_job;
	bool pre_dump;         /* memory only; the process keeps running */
	const char *prev_dir;  /* parent image directory (pre-copy) */
	bool track_mem;
	bool no_track;         /* never track: every round copies everything */
	/* memory to a page server */
	bool page_server;
	const char *address;
	int port;
	const char *auth_key;
	/* post-copy: leave private anonymous pages on the source and serve them */
	bool lazy;
};

int ferry_dump(const struct dump_opts *o, struct ferry_err *err);

/* Stop the dirty tracking of pid (its keeper exits). No tracking is not an error. */
int dump_untrack(pid_t pid, struct ferry_err *err);

#endif
