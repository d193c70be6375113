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
	 * Lazy restore: private anonymous mappings (heap, stack, anon) are not
	 * filled but registered (missing mode) with a userfaultfd made inside the
	 * process. Before the process runs, lazy_handover(ctx, uffd, pid, sp_page)
	 * gets the restorer's copy of it (the lazy-pages daemon must install at
	 * least the page under the stack pointer before answering).
	 */
	bool lazy;
	int (*lazy_handover)(void *ctx, int uffd, pid_t pid, uint64_t sp_page,
			     struct ferry_err *err);
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
