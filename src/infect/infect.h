/*
 * infect: drive a stopped process from the outside.
 *
 * One `struct infect` per seized thread. infect_seize() stops the thread with
 * PTRACE_SEIZE + PTRACE_INTERRUPT and remembers its registers; every remote
 * action then goes through the handle: system calls run inside the target by
 * pointing its instruction pointer at an existing `syscall` instruction (in
 * the vDSO: nothing is written into the target's code), memory is read and
 * written with process_vm_readv/writev, a scratch mapping holds syscall
 * arguments. infect_cure() puts the target back exactly as it was (scratch
 * unmapped, registers restored, a signal dequeued while seizing queued again)
 * and detaches it.
 *
 * Invariants: between calls the thread is in a ptrace stop; ic->saved holds the
 * registers it had when seized; ic->syscall_ip points at 0f 05 in the target.
 */
#ifndef FERRY_INFECT_H
#define FERRY_INFECT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "core/err.h"

#define XSAVE_MAX 8192

struct infect {
	pid_t pid;
	struct user_regs_struct saved; /* registers at seize */
	uint8_t xsave[XSAVE_MAX];      /* xsave area at seize */
	size_t xsave_len;
	uint64_t syscall_ip;           /* address of a syscall instruction in the target */
	uint64_t scratch;              /* remote scratch mapping, 0 if none */
	size_t scratch_size;           /* 0: borrowed from the stack, nothing to unmap */
	bool have_sig;                 /* a signal was dequeued while seizing */
	siginfo_t sig;
	bool seized;
};

/*
 * Seize and stop pid. Fails (target untouched) if it is already traced or
 * stopped, if it is ferry itself, or if it vanished.
 */
int infect_seize(pid_t pid, struct infect *ic, struct ferry_err *err);

/* Find a syscall instruction in the target's [vdso] (at vdso, len bytes) and remember it. */
int infect_find_syscall_ip(struct infect *ic, uint64_t vdso, uint64_t len, struct ferry_err *err);

/*
 * Run one system call in the target. *ret gets the raw result (a negative errno
 * on failure); the return value is < 0 only if the injection itself failed.
 */
int infect_syscall(struct infect *ic, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6,
		   struct ferry_err *err);

/* Like infect_syscall but a negative result becomes an error naming `what`. */
int infect_syscall_ok(struct infect *ic, const char *what, long nr, long *ret, unsigned long a1,
		      unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5,
		      unsigned long a6, struct ferry_err *err);

/* Map (size bytes, shared anonymous, RW) / unmap the scratch area in the target. */
int infect_scratch_map(struct infect *ic, size_t size, struct ferry_err *err);
/* The same at a fixed address, failing if anything is mapped there. */
int infect_scratch_map_at(struct infect *ic, uint64_t addr, size_t size, struct ferry_err *err);
int infect_scratch_unmap(struct infect *ic, struct ferry_err *err);
/*
 * Borrow size bytes of the stack below the red zone as the scratch area
 * instead (no mapping changes, so no mmap lock: /proc/PID/smaps can be read at
 * the same time). Only if the stack pointer and that room lie in [lo, hi), the
 * bounds of the process's main [stack] (a signal stack may be too small);
 * -ENOSPC otherwise. The ABI leaves memory below the red zone unused.
 */
int infect_scratch_on_stack(struct infect *ic, uint64_t lo, uint64_t hi, size_t size,
			    struct ferry_err *err);

/* Copy to / from the target's memory (process_vm_*, /proc/PID/mem as fallback). */
int infect_write(struct infect *ic, uint64_t addr, const void *buf, size_t len,
		 struct ferry_err *err);
int infect_read(struct infect *ic, uint64_t addr, void *buf, size_t len, struct ferry_err *err);

int infect_get_regs(pid_t pid, struct user_regs_struct *regs, struct ferry_err *err);
int infect_set_regs(pid_t pid, const struct user_regs_struct *regs, struct ferry_err *err);
int infect_get_xstate(pid_t pid, void *buf, size_t *len, struct ferry_err *err);
int infect_set_xstate(pid_t pid, const void *buf, size_t len, struct ferry_err *err);

/*
 * Apply the kernel's syscall-restart rules to registers saved while the thread
 * was stopped inside a system call, so that they can be resumed from any stop:
 * -ERESTARTSYS/NOINTR/NOHAND restart the call, -ERESTART_RESTARTBLOCK returns
 * -EINTR (restart_block cannot move; with keep_restart_block it restarts through
 * restart_syscall, valid only in the same kernel task). orig_rax becomes -1.
 */
void infect_fixup_restart(struct user_regs_struct *regs, bool keep_restart_block);

/* Put everything back and detach (also on error paths; best effort, reports the first failure). */
int infect_cure(struct infect *ic, struct ferry_err *err);

/* Detach leaving the registers as they are now (restore: the caller set them). */
int infect_detach(struct infect *ic, struct ferry_err *err);

/* Read the rseq configuration (PTRACE_GET_RSEQ_CONFIGURATION). */
struct rseq_conf {
	uint64_t addr;
	uint32_t len;
	uint32_t sig;
	uint32_t flags;
	uint32_t registered;
};
int infect_get_rseq(pid_t pid, struct rseq_conf *rc, struct ferry_err *err);

/* The host's XCR0 (xsave features enabled by the OS). */
uint64_t infect_host_xfeatures(void);

#endif
