/*
 * The tracking keeper: a small ferry process that holds the userfaultfd of
 * one tracked target between pre-dump rounds, so that nothing of ferry's is
 * left in the target's fd table.
 *
 * It listens on the abstract unix socket "ferry-track-PID-STARTTIME" (the
 * start time tells a reused pid apart) and answers one request per
 * connection:
 *
 *   "GET"             -> "OK SNAPSHOT DIR\n" with the uffd attached (SCM_RIGHTS);
 *                        SNAPSHOT and DIR name the last round ("-" if none)
 *   "SET SNAP DIR"    -> "OK\n": a round finished and re-armed the tracking
 *   "STOP"            -> "OK\n", and the keeper exits (closing the uffd drops
 *                        every registration: the target is left untracked)
 *
 * It also exits when the target does (pidfd), so no keeper outlives its target.
 */
#ifndef FERRY_MEM_KEEPER_H
#define FERRY_MEM_KEEPER_H

#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

struct keeper_state {
	int uffd;            /* a dup of the keeper's uffd, -1 if none */
	char snapshot[64];   /* last round's snapshot id, "" if none */
	char dir[4096];      /* last round's image directory (absolute), "" if none */
};

/* Ask the keeper of pid; -ENOENT (no error text) if there is none. */
int keeper_get(pid_t pid, uint64_t start_time, struct keeper_state *ks, struct ferry_err *err);

/* Start a keeper holding uffd for pid (uffd stays open in the caller too). */
int keeper_start(pid_t pid, uint64_t start_time, int uffd, struct ferry_err *err);

int keeper_set(pid_t pid, uint64_t start_time, const char *snapshot, const char *dir,
	       struct ferry_err *err);

/* Stop the keeper if there is one (0 if there was none). */
int keeper_stop(pid_t pid, uint64_t start_time, struct ferry_err *err);

#endif
