/*
 * wl: what every workload shares (see tests/PROTOCOL.md).
 *
 * A workload is started as `NAME OUTFILE [ARGS...]`. wl_start() opens OUTFILE
 * (O_WRONLY|O_APPEND|O_CREAT, kept open for the whole life of the process: the
 * fd is part of the dumped state) and installs the SIGUSR2 handler, which only
 * sets wl_check_requested. Every line goes out in one write(), so lines never
 * interleave. Lines other than `ready`, `PASS` and `FAIL: ...` start with "# ".
 *
 * Checks are collected, not fatal: wl_expect() writes "# check failed: ..." for
 * each failed check and remembers the first; wl_finish() then appends `PASS`
 * or `FAIL: <first reason> (+N more)` and exits 0 or 1.
 *
 * Temporary files are made with wl_temp_file() in $TMPDIR (or the cwd) and are
 * removed at exit, also when the workload dies of SIGTERM or SIGINT (unless the
 * workload took those signals over).
 *
 * Nothing here calls malloc after wl_start(): the mem workload checks that the
 * program break is where it was, and glibc would move it.
 */
#ifndef FERRY_WL_H
#define FERRY_WL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit status of a workload that cannot run on this kernel (after "# unsupported"). */
#define WL_EXIT_UNSUPPORTED 3

extern volatile sig_atomic_t wl_check_requested;
/* SIGUSR1s received since wl_catch_usr1(). */
extern volatile sig_atomic_t wl_usr1_count;

/* Count SIGUSR1 in wl_usr1_count; block SIGUSR1 and SIGUSR2, and set *wait to
 * the mask that lets both in (for sigsuspend), so steps run uninterrupted. */
void wl_catch_usr1(sigset_t *wait);
extern const char *wl_name;

/* Parses `NAME OUTFILE ARGS...`; exits 2 with usage if fewer than min_args ARGS. */
void wl_start(int argc, char **argv, int min_args, const char *usage);

/* The fd of OUTFILE. */
int wl_out_fd(void);

void wl_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends `ready`, after recording the open fds (see wl_check_fds). */
void wl_ready(void);

/* Setup failed: "FAIL: setup: ..." and exit 1. */
_Noreturn void wl_setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The kernel lacks the feature: "# unsupported: ..." and exit 3. */
_Noreturn void wl_unsupported(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sleeps in sigsuspend until SIGUSR2 came; the signal mask is as before. */
void wl_wait_for_check(void);

/* Records a failed check unless ok; returns ok. */
bool wl_expect(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
unsigned wl_failures(void);
_Noreturn void wl_finish(void);

/* The set of open fds must be the one seen at wl_ready() (nothing leaked into us). */
void wl_check_fds(void);

/* Temporary files: path receives the name; the file is created empty, mode 0600. */
int wl_temp_file(char *path, size_t len, const char *tag);
int wl_temp_dir(char *path, size_t len, const char *tag);
void wl_forget_temp(const char *path);
/* Removes path (absolute) at exit too; a directory only if it is empty by then. */
void wl_adopt_temp(const char *path, bool is_dir);
const char *wl_tmpdir(void);

/* Patterns: word i of a buffer filled with seed s is wl_word(s, i). */
uint64_t wl_word(uint64_t seed, uint64_t i);
void wl_fill(void *buf, size_t len, uint64_t seed);
/* Offset of the first byte that differs from the pattern, or -1. */
ssize_t wl_mismatch(const void *buf, size_t len, uint64_t seed);
/* Offset of the first non-zero byte, or -1. */
ssize_t wl_nonzero(const void *buf, size_t len);

/* I/O that retries on EINTR and short counts; return len, or -1 with errno. */
ssize_t wl_write_all(int fd, const void *buf, size_t len);
ssize_t wl_read_all(int fd, void *buf, size_t len);
ssize_t wl_pread_all(int fd, void *buf, size_t len, off_t off);
ssize_t wl_pwrite_all(int fd, const void *buf, size_t len, off_t off);

/* /proc/self/maps: the mapping that holds addr. perms gets "rw-p", name the path. */
bool wl_mapping(const void *addr, uintptr_t *start, uintptr_t *end, char perms[5], char *name,
		size_t name_len);
/* Every byte of [addr, addr+len) is mapped with exactly these permissions. */
bool wl_range_has_perms(const void *addr, size_t len, const char *perms);
/* The VmFlags of the mapping that holds addr contain flag (two letters). */
bool wl_vmflag(const void *addr, const char *flag);

/* A field of /proc/self/status ("SigBlk", "Umask", ...), value trimmed. */
bool wl_status_field(const char *field, char *value, size_t len);
/* Reads a whole small file into buf, NUL-terminated; returns length or -1. */
ssize_t wl_read_file(const char *path, char *buf, size_t len);

uint64_t wl_now_ns(int clock);
size_t wl_page_size(void);

#endif
