/*
 * State of one restore while it runs.
 */
#ifndef FERRY_RESTORE_INTERNAL_H
#define FERRY_RESTORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "core/image.h"
#include "core/vdso.h"
#include "infect/infect.h"
#include "mem/page_read.h"
#include "restore/restore.h"

/* Helper fds in the child, above every fd of the image:
 *   base + 0          ready pipe (write end)
 *   base + 1          the terminal for --shell-job ttys
 *   base + 2 + i      page layer i
 *   base + 2 + L + j  mm file j (mapped files, the executable)
 * All of them are closed (close_range) before the process runs. */
struct restore_ctx {
	const struct restore_opts *o;
	const char *dir;
	int dirfd;
	Inventory *inv;
	Pstree *pstree;
	PstreeEntry *pe;
	TaskCore *task;
	ThreadCore *core;
	Mm *mm;
	Fds *fds;
	struct page_read pr;
	bool ferry_run;
	int ready[2];
	int tty_fd;          /* restorer's terminal, -1 if none */
	int helper_base;
	pid_t pid;           /* outer pid of the restored process */
	pid_t init_pid;      /* its ferry init, 0 in host mode */
	struct infect ic;
	struct vdso_layout vdso; /* ferry's own, which the new process starts with */
	uint64_t t0;
	uint64_t zombie_wait_ns; /* not counted in the restore time */
	int uffd;            /* lazy restore, -1 otherwise */
	/* page checksums are verified in a thread while the process is built */
	pthread_t verify_tid;
	bool verifying;
	int verify_ret;
	struct ferry_err verify_err;
	uint64_t lazy_pages;
};

static inline int helper_layer_fd(const struct restore_ctx *r, int layer)
{
	return r->helper_base + 2 + layer;
}
static inline int helper_file_fd(const struct restore_ctx *r, int file)
{
	return r->helper_base + 2 + r->pr.nr_layers + file;
}

int restore_load(struct restore_ctx *r, struct ferry_err *err);
int restore_check(struct restore_ctx *r, struct ferry_err *err);
int restore_verify_start(struct restore_ctx *r, struct ferry_err *err);
int restore_verify_wait(struct restore_ctx *r, struct ferry_err *err);
void restore_free(struct restore_ctx *r);

/* In the new child: fds, cwd, ... then report on the ready pipe and wait. Never returns. */
int restore_child_main(void *arg);

int restore_mm(struct restore_ctx *r, struct ferry_err *err);
int restore_task(struct restore_ctx *r, struct ferry_err *err);
int restore_finish(struct restore_ctx *r, struct ferry_err *err);
/* From outside, while the process still has ferry's credentials. */
int restore_rlimits(struct restore_ctx *r, struct ferry_err *err);

#endif
