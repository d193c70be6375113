/*
 * State of one dump while it runs. Every protobuf message and string built
 * for the images is allocated from the context's arena and freed at the end.
 */
#ifndef FERRY_DUMP_INTERNAL_H
#define FERRY_DUMP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/image.h"
#include "dump/dump.h"
#include "infect/infect.h"
#include "mem/dump_mem.h"
#include "proc/proc.h"

struct arena_block;

struct dump_ctx {
	const struct dump_opts *o;
	pid_t pid;        /* as seen by ferry */
	pid_t ns_pid;     /* in its own pid namespace */
	bool ferry_run;   /* runs under `ferry run` */
	struct infect ic;
	struct proc_status st;
	struct proc_stat stat;
	struct proc_vma *vmas;
	size_t nvmas;
	struct vmaflags *vf; /* VmFlags without smaps, if BPF is there */
	int dirfd;        /* the partial directory */
	struct arena_block *arena;

	Inventory inv;
	Pstree pstree;
	PstreeEntry pentry;
	TaskCore task;
	ThreadCore core;
	Mm mm;
	Fds fds;
	struct mem_stats mstats;
	uint64_t t_start, t_frozen, t_thawed;

	/* pre-copy */
	char snapshot[33];
	char parent_dir[4096];     /* "" if none */
	char parent_path[4096];    /* as recorded in the inventory */
	Inventory *parent_inv;
	Pagemap *parent_pm;
	int uffd;                  /* dirty tracking, -1 if none */
	bool keeper_existed;       /* tracking armed by an earlier round */
	bool our_wp;               /* write-protect registrations in the target are ferry's */
	bool holes_ok;             /* tracking continuous since the parent round */
	struct mem_plan plan;
	int lazy_ls;               /* post-copy: the listening socket, -1 if none */
};

void *dz_alloc(struct dump_ctx *d, size_t size);
char *dz_strdup(struct dump_ctx *d, const char *s);
void dz_free_all(struct dump_ctx *d);
/* Append p to a protobuf repeated field (array of pointers). */
int dz_push(struct dump_ctx *d, void ***arr, size_t *n, void *p);

int dump_task(struct dump_ctx *d, struct ferry_err *err);
int dump_mm(struct dump_ctx *d, struct ferry_err *err);
int dump_fds(struct dump_ctx *d, struct ferry_err *err);
/* Find the parent round and the dirty tracking; decide whether holes are allowed. */
int dump_prepare_tracking(struct dump_ctx *d, struct ferry_err *err);
/* While frozen: which pages to save (and re-arm the tracking). */
int dump_plan_memory(struct dump_ctx *d, struct ferry_err *err);
/* Send the planned pages (pre-dump: after the target runs again). */
int dump_send_memory(struct dump_ctx *d, struct ferry_err *err);
/* After the images are published: hand the tracking to the keeper, or stop it. */
int dump_finish_tracking(struct dump_ctx *d, bool ok, struct ferry_err *err);
/* File identity for the images (path is what the process sees). */
int dump_file_id(struct dump_ctx *d, const char *path, int fd, FileId **out,
		 struct ferry_err *err);

#endif
