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
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

struct restore_opts {
	const char *dir;
	bool shell_job;
	bool detached;
	/*
	 * Lazy restore: pages of FERRY_PR_LAZY runs are not filled; their ranges
	 * are registered (missing mode) with a userfaultfd made inside the
	 * process, and the restorer's copy of it comes back in the result. The
	 * page under each thread's stack pointer is filled eagerly from `lazy_fill`
	 * if given (a callback that reads one lazy page), else left lazy too.
	 */
	bool lazy;
	int (*lazy_fill)(void *ctx, uint64_t addr, void *page, struct ferry_err *err);
	void *lazy_ctx;
};

struct restore_result {
	pid_t pid;     /* the restored process, as seen by the caller */
	pid_t waitee;  /* the caller's child to wait for (the process, or its ferry init) */
	double ms;     /* from start to running */
	int uffd;      /* lazy restore: the userfaultfd (the caller owns it), else -1 */
	uint64_t lazy_pages;
};

int ferry_restore(const struct restore_opts *o, struct restore_result *res, struct ferry_err *err);

#endif
