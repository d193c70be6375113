/*
 * A ferry init: PID 1 of fresh PID, mount and time namespaces.
 *
 * A command that runs as PID 1 of a PID namespace drops every signal it has no
 * handler for and has to reap orphans, so ferry never puts the command there.
 * Instead a tiny init (a fork of ferry, named "ferry-init") is PID 1 and the
 * command is PID 2, its only direct child:
 *
 *   caller                         (the caller's namespaces)
 *     `- ferry-init     PID 1      new PID, mount and time namespaces,
 *          |                       a private /proc of its own PID namespace
 *          `- child_fn  PID 2      created with clone3(set_tid = {2})
 *
 * What is always true of a running init:
 *  - it holds no fd but stdio (and, until PID 2 exists, the keep_fds, which it
 *    passes on to PID 2 and then closes);
 *  - it reaps every process that ends in its namespace;
 *  - it forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT and
 *    SIGWINCH to PID 2;
 *  - it exits when PID 2 ends, never before, with PID 2's exit status (128 + the
 *    signal number if PID 2 was killed by a signal). The kernel then kills what
 *    is left in the namespace.
 *
 * The time namespace gets its CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets before
 * any process enters it (the kernel refuses them afterwards), so a restored
 * process can keep its clocks across hosts.
 */
#ifndef FERRY_CORE_NSINIT_H
#define FERRY_CORE_NSINIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

#define NSINIT_MAX_KEEP_FDS 16

struct nsinit_cfg {
	bool set_time_offsets;    /* write timens offsets for the new time namespace */
	int64_t monotonic_off_ns; /* offset for CLOCK_MONOTONIC */
	int64_t boottime_off_ns;  /* offset for CLOCK_BOOTTIME */
	int keep_fds[NSINIT_MAX_KEEP_FDS]; /* fds of the caller PID 2 inherits (e.g. a pipe */
	int n_keep_fds;                    /* child_fn uses); every other fd is closed    */
};

/*
 * Start a ferry init as PID 1 of fresh PID, mount and time namespaces and its
 * child PID 2, which calls child_fn(arg). child_fn normally execs or never
 * returns; if it returns, PID 2 _exit()s with its return value.
 *
 * child_fn runs with the caller's signal mask and dispositions, with stdio and
 * the keep_fds open and nothing else, and with ferry's logging switched off
 * (ferry_log_level = -1: the log fd is gone unless it was kept, and its number
 * may be reused). It must only use fork-safe code if the caller has threads.
 *
 * Returns 0 once PID 2 exists, with the pids of the init and of PID 2 as seen
 * from the caller's PID namespace. The init is a child of the caller (the
 * caller reaps it); it is not detached here. On failure nothing is left
 * running and err says which step failed.
 */
/*
 * clone3 as fork with flags and, if n_set_tid, the pids to give the child
 * (set_tid[0] in the innermost pid namespace). Returns as fork does.
 */
pid_t raw_clone3(uint64_t flags, pid_t *set_tid, size_t n_set_tid);

int nsinit_spawn(const struct nsinit_cfg *cfg, int (*child_fn)(void *arg), void *arg,
		 pid_t *init_pid, pid_t *child_pid, struct ferry_err *err);

/*
 * Read the offsets of the time namespace of pid (from /proc/PID/timens_offsets,
 * which shows the namespace its future children get; for a process that never
 * called unshare(CLONE_NEWTIME), such as a ferry init or its children, that is
 * its own).
 */
int nsinit_read_time_offsets(pid_t pid, int64_t *mono_ns, int64_t *boot_ns, struct ferry_err *err);

#endif
