/*
 * restore: recreate a process from an image directory.
 *
 * Everything that can be checked is checked before any process exists: the
 * images (magic, version, checksums, consistency), the machine (arch, xsave
 * features, vDSO), the files the image maps or opens (identity), and the pid.
 * Then a child is created with the dumped pid (clone3 set_tid; or PID 2 under
 * a fresh ferry init for `ferry run` images), arranges its fd table in plain
 * C and stops; the restorer drives it with injected system calls (rebuild
 * the address space, fill it with preadv straight from the page files, signal
 * state, timers, mm fields, credentials last) and sets its registers at the
 * last stop. If anything fails the child is killed: nothing half-made stays.
 */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

struct restore_opts {
	const char *dir;
	bool shell_job;
	bool detached;
};

struct restore_result {
	pid_t pid;     /* the restored process, as seen by the caller */
	pid_t waitee;  /* the caller's child to wait for (the process, or its ferry init) */
	double ms;     /* from start to running */
};

int ferry_restore(const struct restore_opts *o, struct restore_result *res, struct ferry_err *err);

#endif
