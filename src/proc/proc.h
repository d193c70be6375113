/*
 * /proc parsing. Each parser has a pure part that takes the file's text (for
 * unit tests and fuzzing) and a wrapper that reads /proc/PID/... itself.
 * Parsers never trust the text: malformed lines give -EINVAL with the line
 * in the error message, never a crash.
 */
#ifndef FERRY_PROC_H
#define FERRY_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* VmFlags from smaps, as bits. */
enum proc_vmflag {
	VMF_RD = 1u << 0, VMF_WR = 1u << 1, VMF_EX = 1u << 2, VMF_SH = 1u << 3,
	VMF_MR = 1u << 4, VMF_MW = 1u << 5, VMF_ME = 1u << 6, VMF_MS = 1u << 7,
	VMF_GD = 1u << 8,  /* grows down */
	VMF_PF = 1u << 9,  /* pure PFN range */
	VMF_LO = 1u << 10, /* mlocked */
	VMF_IO = 1u << 11,
	VMF_DC = 1u << 12, /* do not copy on fork (MADV_DONTFORK) */
	VMF_DE = 1u << 13,
	VMF_AC = 1u << 14,
	VMF_NR = 1u << 15, /* no reserve */
	VMF_HT = 1u << 16,
	VMF_DD = 1u << 17, /* do not include in core dump (MADV_DONTDUMP) */
	VMF_MM = 1u << 18, /* mixed map */
	VMF_HG = 1u << 19, /* MADV_HUGEPAGE */
	VMF_NH = 1u << 20, /* MADV_NOHUGEPAGE */
	VMF_MG = 1u << 21, /* MADV_MERGEABLE */
	VMF_WF = 1u << 22, /* MADV_WIPEONFORK */
	VMF_UM = 1u << 23, /* userfaultfd missing */
	VMF_UW = 1u << 24, /* userfaultfd wr-protect */
	VMF_SS = 1u << 25, /* shadow stack */
	VMF_SD = 1u << 26, /* soft-dirty */
	VMF_SL = 1u << 27, /* sealed */
	VMF_UNKNOWN = 1u << 31, /* a flag this parser does not know (ignored otherwise) */
};

struct proc_vma {
	uint64_t start, end;
	uint64_t pgoff;        /* file offset in bytes */
	uint32_t prot;         /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;           /* 's' in the permissions */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	char *path;            /* malloc'd; NULL for anonymous; "[heap]", "[stack]", "[vdso]", ... kept as is */
	bool deleted;          /* the path ended in " (deleted)", which is stripped from path */
	uint32_t vmflags;      /* enum proc_vmflag bits; 0 if parsed without smaps */
};

/* Parse /proc/PID/maps text; or smaps text (then VmFlags are filled too). */
int proc_parse_maps_text(const char *text, bool is_smaps, struct proc_vma **vmas, size_t *n,
			 struct ferry_err *err);
/* Read /proc/PID/smaps (with_flags) or /proc/PID/maps. */
int proc_parse_maps(pid_t pid, bool with_flags, struct proc_vma **vmas, size_t *n,
		    struct ferry_err *err);
void proc_free_maps(struct proc_vma *vmas, size_t n);

/*
 * VmFlags without smaps' page walk (vmaflags.c): open before the freeze,
 * then fill the vmflags of what /proc/PID/maps gave, read during the freeze.
 * ESTALE: what the reader saw disagrees with vmas (or has flags it does not
 * know); ENOTSUP: no BPF here. Either way smaps is the answer.
 */
struct vmaflags;
int vmaflags_open(pid_t pid, struct vmaflags **out, struct ferry_err *err);
int vmaflags_read(struct vmaflags *v, struct proc_vma *vmas, size_t n, struct ferry_err *err);
void vmaflags_close(struct vmaflags *v);
/*
 * The reader against smaps, on a process that does not change its mappings
 * meanwhile (`ferry check`, the tests): 0 if both give every mapping the same
 * flags, *n the mappings and *seen the union of their flags; EPROTO naming the
 * first that differs.
 */
int vmaflags_check_smaps(struct vmaflags *v, pid_t pid, size_t *n, uint32_t *seen,
			 struct ferry_err *err);

struct proc_status {
	char name[64];
	char state;            /* R, S, D, T, t, Z, ... */
	pid_t tgid, pid, ppid, tracer_pid;
	uint32_t uid[4], gid[4]; /* real, effective, saved, fs */
	uint32_t groups[256];
	int ngroups;
	uint32_t umask;
	int threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;           /* 0 disabled, 1 strict, 2 filter */
	pid_t nspid[8];        /* NSpid: outermost first */
	int nspid_n;
};

int proc_parse_status_text(const char *text, struct proc_status *st, struct ferry_err *err);
int proc_parse_status(pid_t pid, struct proc_status *st, struct ferry_err *err);

struct proc_stat {
	pid_t pid;
	char comm[64];
	char state;
	pid_t ppid, pgrp, session;
	uint64_t flags;
	uint64_t start_time;   /* field 22 */
	uint64_t start_code, end_code, start_stack;          /* 26 27 28 */
	int exit_signal;                                      /* 38 */
	uint64_t start_data, end_data, start_brk;             /* 45 46 47 */
	uint64_t arg_start, arg_end, env_start, env_end;     /* 48 49 50 51 */
	int exit_code;                                        /* 52 */
};

/* The comm field may hold spaces and parentheses: the last ')' ends it. */
int proc_parse_stat_text(const char *text, struct proc_stat *st, struct ferry_err *err);
int proc_parse_stat(pid_t pid, struct proc_stat *st, struct ferry_err *err);

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;        /* octal in the file */
	int mnt_id;
	uint64_t ino;
	bool has_lock;         /* a "lock:" line: file locks are held */
};

int proc_parse_fdinfo_text(const char *text, struct proc_fdinfo *fi, struct ferry_err *err);
int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi, struct ferry_err *err);

/* /proc/PID/task/TID/children: space-separated pids. */
int proc_parse_children(pid_t pid, pid_t **kids, size_t *n, struct ferry_err *err);
/* The text of one children file ("12 34 "); *kids is malloc'd. */
int proc_parse_children_text(const char *text, pid_t **kids, size_t *n, struct ferry_err *err);

/* Number of entries in /proc/PID/task. */
int proc_count_threads(pid_t pid, struct ferry_err *err);

/* /proc/PID/auxv as pairs of u64 (type, value) up to and including AT_NULL. */
int proc_read_auxv(pid_t pid, uint64_t **auxv, size_t *n_words, struct ferry_err *err);
/* The same from the file's bytes; -EINVAL if there is no AT_NULL pair. */
int proc_parse_auxv_data(const void *data, size_t len, uint64_t **auxv, size_t *n_words,
			 struct ferry_err *err);

#endif
