/*
 * dump: the order of a checkpoint.
 *
 *   refuse what is not supported (before touching the target)
 *   seize and freeze            (src/infect)
 *   collect task, mm, fds       (task.c, mm.c, files.c)
 *   stream memory               (src/mem)
 *   write the images into DIR/.partial-PID, move them into DIR, inventory last
 *   kill the target, or cure it (--leave-running, and on every failure)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/nsinit.h"
#include "core/util.h"
#include "dump/internal.h"
#include "lazy/lazy.h"

struct arena_block {
	struct arena_block *next;
	max_align_t data[];
};

void *dz_alloc(struct dump_ctx *d, size_t size)
{
	struct arena_block *b = calloc(1, sizeof(*b) + size);

	if (!b)
		return NULL;
	b->next = d->arena;
	d->arena = b;
	return b->data;
}

char *dz_strdup(struct dump_ctx *d, const char *s)
{
	size_t len = strlen(s);
	char *p = dz_alloc(d, len + 1);

	if (p)
		memcpy(p, s, len + 1);
	return p;
}

int dz_push(struct dump_ctx *d, void ***arr, size_t *n, void *p)
{
	/* grow in powers of two; old arrays stay in the arena until the end */
	if ((*n & (*n - 1)) == 0 || *n == 0) {
		size_t cap = *n ? *n * 2 : 4;
		void **na = dz_alloc(d, cap * sizeof(void *));
		if (!na)
			return -ENOMEM;
		if (*n)
			memcpy(na, *arr, *n * sizeof(void *));
		*arr = na;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

void dz_free_all(struct dump_ctx *d)
{
	while (d->arena) {
		struct arena_block *next = d->arena->next;
		free(d->arena);
		d->arena = next;
	}
}

static bool is_image_name(const char *name)
{
	static const char *prefixes[] = {"inventory", "pstree", "task-", "core-", "mm-",
					 "fds-", "pagemap-", "pages-", "sent-pagemap-"};
	size_t len = strlen(name);

	if (len < 5 || strcmp(name + len - 4, ".img"))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static void remove_dir_files(int dirfd, bool only_images)
{
	int fd = dup(dirfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && (!only_images || is_image_name(de->d_name)))
			unlinkat(dirfd, de->d_name, 0);
	closedir(dir);
}

/* From the status just parsed. */
static int refuse_threads(struct dump_ctx *d, struct ferry_err *err)
{
	if (d->st.threads > 1)
		return ferry_refuse(err, EOPNOTSUPP,
				    "pid %d has %d threads: multi-threaded processes are not supported yet",
				    d->pid, d->st.threads);
	return 0;
}

/* Refusals that need no ptrace: the target is not touched at all. */
static int preflight(struct dump_ctx *d, struct ferry_err *err)
{
	char path[64], *text = NULL;
	pid_t *kids = NULL;
	size_t nkids = 0;
	int r;

	if (d->pid == getpid())
		return ferry_refuse(err, EINVAL, "pid %d is ferry itself", d->pid);
	if (kill(d->pid, 0) < 0 && errno == ESRCH)
		return ferry_refuse(err, ESRCH, "no process with pid %d", d->pid);
	r = proc_parse_status(d->pid, &d->st, err);
	if (r < 0)
		return r;
	if (d->st.tgid != d->pid)
		return ferry_refuse(err, EINVAL, "pid %d is a thread of process %d, not a process",
				  d->pid, d->st.tgid);
	r = refuse_threads(d, err);
	if (r < 0)
		return r;
	r = proc_parse_children(d->pid, &kids, &nkids, err);
	if (r < 0)
		return r;
	free(kids);
	if (nkids)
		return ferry_refuse(err, EOPNOTSUPP,
				  "pid %d has %zu child process(es): process trees are not supported yet",
				  d->pid, nkids);
	if (d->st.seccomp)
		return ferry_refuse(err, EOPNOTSUPP,
				  "pid %d uses seccomp (mode %d): not supported yet", d->pid,
				  d->st.seccomp);
	snprintf(path, sizeof(path), "/proc/%d/timers", d->pid);
	if (read_file(path, &text, NULL, err) == 0) {
		bool any = text[0] != '\0';
		free(text);
		if (any)
			return ferry_refuse(err, EOPNOTSUPP,
					  "pid %d has POSIX timers: not supported yet", d->pid);
	}
	struct ferry_err e2;
	if (vmaflags_open(d->pid, &d->vf, &e2) < 0)
		pr_debug("pid %d: VmFlags from smaps: %s", d->pid, e2.msg);
	return 0;
}

static int same_exe(pid_t a, pid_t b)
{
	char pa[64], pb[64], la[PATH_MAX], lb[PATH_MAX];
	ssize_t na, nb;

	snprintf(pa, sizeof(pa), "/proc/%d/exe", a);
	snprintf(pb, sizeof(pb), "/proc/%d/exe", b);
	na = readlink(pa, la, sizeof(la));
	nb = readlink(pb, lb, sizeof(lb));
	return na > 0 && na == nb && !memcmp(la, lb, na);
}

/* Which pid namespace: the host's, or one made by `ferry run`. */
static int check_pidns(struct dump_ctx *d, struct ferry_err *err)
{
	struct proc_status pst;
	int r;

	d->ns_pid = d->pid;
	if (d->st.nspid_n <= 1)
		return 0;
	d->ns_pid = d->st.nspid[d->st.nspid_n - 1];
	r = proc_parse_status(d->st.ppid, &pst, err);
	if (r < 0)
		return r;
	if (d->st.nspid_n != 2 || d->ns_pid != 2 || pst.nspid_n != 2 || pst.nspid[1] != 1 ||
	    !same_exe(d->st.ppid, getpid()))
		return ferry_refuse(err, EOPNOTSUPP,
				  "pid %d lives in a pid namespace not made by `ferry run` "
				  "(pid %d there): not supported yet",
				  d->pid, d->ns_pid);
	d->ferry_run = true;
	return 0;
}

static void new_snapshot_id(char out[33])
{
	uint8_t rnd[16];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		uint64_t t = now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
		memcpy(rnd, &t, 8);
		t ^= mono_ns();
		memcpy(rnd + 8, &t, 8);
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void fill_inventory(struct dump_ctx *d)
{
	Inventory *inv = &d->inv;

	inv->format_version = FERRY_IMG_VERSION;
	inv->snapshot_id = d->snapshot;
	if (d->parent_inv) {
		inv->parent_path = d->parent_path;
		inv->parent_snapshot_id = d->parent_inv->snapshot_id;
	}
	inv->root_pid = d->pid;
	inv->arch = "x86_64";
	inv->xsave_size = d->ic.xsave_len;
	/* the features the saved area holds (XSTATE_BV of its header) */
	if (d->ic.xsave_len >= 512 + 8 && !d->o->pre_dump)
		memcpy(&inv->xfeatures, d->ic.xsave + 512, 8);
	inv->dump_time_ns = now_ns(CLOCK_REALTIME);
	inv->ferry_version = FERRY_VERSION;
	inv->has_pre_dump = true;
	inv->pre_dump = d->o->pre_dump;
	inv->has_start_time = true;
	inv->start_time = d->stat.start_time;
}

static int fill_pstree(struct dump_ctx *d, struct ferry_err *err)
{
	static PstreeEntry *entries[1];
	static uint32_t threads[1];
	PstreeEntry *e = &d->pentry;

	pstree_entry__init(e);
	e->pid = d->ns_pid;
	e->ppid = d->ferry_run ? 1 : d->stat.ppid;
	e->pgid = d->stat.pgrp;
	e->sid = d->stat.session;
	threads[0] = d->ns_pid;
	e->n_threads = 1;
	e->threads = threads;
	e->has_outer_pid = true;
	e->outer_pid = d->pid;
	entries[0] = e;
	d->pstree.n_entries = 1;
	d->pstree.entries = entries;
	d->pstree.pid_ns_mode = d->ferry_run ? "ferry-run" : "host";
	if (d->ferry_run) {
		int64_t mono, boot;
		int r = nsinit_read_time_offsets(d->pid, &mono, &boot, err);
		if (r < 0)
			return r;
		d->pstree.has_monotonic_at_dump_ns = true;
		d->pstree.monotonic_at_dump_ns = (int64_t)now_ns(CLOCK_MONOTONIC) + mono;
		d->pstree.has_boottime_at_dump_ns = true;
		d->pstree.boottime_at_dump_ns = (int64_t)now_ns(CLOCK_BOOTTIME) + boot;
	}
	return 0;
}

static int write_images(struct dump_ctx *d, struct ferry_err *err)
{
	char name[64];
	int r;

	r = img_write(d->dirfd, "pstree.img", IMG_PSTREE, &d->pstree.base, err);
	img_name(name, sizeof(name), "task", d->ns_pid);
	if (r == 0)
		r = img_write(d->dirfd, name, IMG_TASK, &d->task.base, err);
	img_name(name, sizeof(name), "core", d->ns_pid);
	if (r == 0)
		r = img_write(d->dirfd, name, IMG_CORE, &d->core.base, err);
	img_name(name, sizeof(name), "mm", d->ns_pid);
	if (r == 0)
		r = img_write(d->dirfd, name, IMG_MM, &d->mm.base, err);
	img_name(name, sizeof(name), "fds", d->ns_pid);
	if (r == 0)
		r = img_write(d->dirfd, name, IMG_FDS, &d->fds.base, err);
	return r;
}

/* Move the finished images from the partial directory into DIR, inventory last. */
static int publish(int outfd, int partfd, const char *partname, struct ferry_err *err)
{
	int fd = dup(partfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int r = 0;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return ferry_fail_errno(err, "read %s", partname);
	}
	unlinkat(outfd, "inventory.img", 0);
	remove_dir_files(outfd, true);
	while ((de = readdir(dir)) && r == 0) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "inventory.img"))
			continue;
		if (renameat(partfd, de->d_name, outfd, de->d_name) < 0)
			r = ferry_fail_errno(err, "move %s into place", de->d_name);
	}
	closedir(dir);
	if (r == 0 && renameat(partfd, "inventory.img", outfd, "inventory.img") < 0)
		r = ferry_fail_errno(err, "move inventory.img into place");
	if (r == 0 && img_is_durable())
		fsync(outfd);
	return r;
}

/*
 * The images are complete: SIGKILL ends the target for good. Its exit is not
 * waited for: freeing a large address space takes the kernel tens of
 * milliseconds (90 ms for 1 GiB here) that nobody needs to wait for; a
 * restore of the same pid waits for the dying process itself.
 */
static int kill_target(struct dump_ctx *d, struct ferry_err *err)
{
	if (kill(d->pid, SIGKILL) < 0)
		return ferry_fail_errno(err, "kill pid %d after the dump", d->pid);
	d->ic.seized = false;
	return 0;
}

/* A pre-dump reads memory while the process runs: it must still be the same one. */
static int check_alive(struct dump_ctx *d, struct ferry_err *err)
{
	struct proc_stat st;
	struct ferry_err e2;

	if (proc_parse_stat(d->pid, &st, &e2) < 0 || st.start_time != d->stat.start_time ||
	    st.state == 'Z' || st.state == 'X')
		return ferry_refuse(err, ESRCH, "pid %d exited during the pre-dump: round discarded",
				    d->pid);
	return 0;
}

/* Post-copy: serve the lazy pages from the frozen process until the
 * destination has them all (then kill it), or resume it if the destination
 * never committed. */
static int serve_lazy(struct dump_ctx *d, struct ferry_err *err)
{
	struct lazy_src_opts lo = {.address = d->o->address, .port = d->o->port,
				   .auth_key = d->o->auth_key, .ready_fd = -1,
				   .listen_fd = d->lazy_ls, .snapshot_id = d->snapshot};
	bool committed = false;
	int r;

	pr_info("pid %d: images written; serving its lazy pages on port %d", d->pid, d->o->port);
	r = lazy_serve_process(&d->ic, d->ns_pid, &lo, &committed, err);
	d->lazy_ls = -1; /* closed by the server */
	if (committed) {
		struct ferry_err e2;
		kill_target(d, &e2);
		return r;
	}
	struct ferry_err e2;
	if (infect_cure(&d->ic, &e2) < 0)
		pr_err("pid %d: %s", d->pid, e2.msg);
	if (r == 0)
		r = ferry_refuse(err, ECANCELED,
				 "the destination never committed: pid %d resumed on the source",
				 d->pid);
	return r;
}

static int find_syscall_ip(struct dump_ctx *d, struct ferry_err *err)
{
	for (size_t i = 0; i < d->nvmas; i++)
		if (d->vmas[i].path && !strcmp(d->vmas[i].path, "[vdso]"))
			return infect_find_syscall_ip(&d->ic, d->vmas[i].start,
						      d->vmas[i].end - d->vmas[i].start, err);
	return infect_find_syscall_ip(&d->ic, 0, 0, err);
}

/*
 * Reading /proc/PID/smaps (for the VmFlags) walks every page table of the
 * process: 7 ms for 1 GiB of 4 KiB pages. It runs in a thread while the main
 * thread, the tracer, injects the system calls that collect the task's state,
 * with their scratch area borrowed from the stack: those calls take no mmap
 * lock, so neither waits for the other.
 */
struct smaps_job {
	pid_t pid;
	int r;
	struct proc_vma *vmas;
	size_t n;
	struct ferry_err err;
};

static void *read_smaps(void *arg)
{
	struct smaps_job *j = arg;

	j->r = proc_parse_maps(j->pid, true, &j->vmas, &j->n, &j->err);
	return NULL;
}

static bool same_layout(const struct proc_vma *a, size_t na, const struct proc_vma *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].start != b[i].start || a[i].end != b[i].end || a[i].prot != b[i].prot ||
		    a[i].ino != b[i].ino || a[i].pgoff != b[i].pgoff)
			return false;
	return true;
}

/* The scratch area on the [stack], if the stack pointer is there. */
static int scratch_on_stack(struct dump_ctx *d, struct ferry_err *err)
{
	for (size_t i = 0; i < d->nvmas; i++)
		if (d->vmas[i].path && !strcmp(d->vmas[i].path, "[stack]"))
			return infect_scratch_on_stack(&d->ic, d->vmas[i].start, d->vmas[i].end,
						       PAGE_SIZE, err);
	return ferry_refuse(err, ENOSPC, "pid %d has no [stack] mapping", d->pid);
}

/* The task's state through injected system calls (a full dump only). */
static int collect_task(struct dump_ctx *d, bool on_stack, struct ferry_err *err)
{
	int r = dump_fds(d, err);

	if (r == 0)
		r = on_stack ? 0 : infect_scratch_map(&d->ic, PAGE_SIZE, err);
	if (r == 0)
		r = dump_task(d, err);
	if (r == 0)
		r = infect_scratch_unmap(&d->ic, err);
	return r;
}

/*
 * Join the smaps reader; its VMAs, with flags, replace the plain maps. If the
 * scratch area had to be mapped while it read, it may show: read again.
 */
static int take_smaps(struct dump_ctx *d, pthread_t th, struct smaps_job *j,
		      struct ferry_err *err)
{
	pthread_join(th, NULL);
	if (j->r < 0) {
		*err = j->err;
		return j->r;
	}
	if (!same_layout(j->vmas, j->n, d->vmas, d->nvmas)) {
		proc_free_maps(j->vmas, j->n);
		j->vmas = NULL;
		j->n = 0;
		pr_debug("pid %d: reading smaps again after the scratch mapping", d->pid);
		int r = proc_parse_maps(d->pid, true, &j->vmas, &j->n, err);
		if (r < 0)
			return r;
		if (!same_layout(j->vmas, j->n, d->vmas, d->nvmas))
			return ferry_refuse(err, EAGAIN,
					    "pid %d: its mappings changed while it was frozen", d->pid);
	}
	proc_free_maps(d->vmas, d->nvmas);
	d->vmas = j->vmas;
	d->nvmas = j->n;
	j->vmas = NULL;
	j->n = 0;
	return 0;
}

/*
 * The VMAs with their flags: maps, then the flags from the BPF reader (no page
 * walk); smaps if that reader is not there or disagrees. Reading smaps is
 * started first when it can run beside the injected calls (a full dump).
 */
static int collect(struct dump_ctx *d, struct ferry_err *err)
{
	bool full = !d->o->pre_dump, overlap = full && !d->vf, bpf = d->vf != NULL;
	struct smaps_job job = {.pid = d->pid};
	struct ferry_err e2;
	pthread_t th;
	int r;

	/* the page walk first: it is the longest part of the freeze */
	if (overlap && pthread_create(&th, NULL, read_smaps, &job) != 0)
		overlap = false;
	/* what preflight saw may have changed before the freeze: look again */
	r = proc_parse_status(d->pid, &d->st, err);
	if (r == 0)
		r = refuse_threads(d, err);
	if (r == 0)
		r = proc_parse_stat(d->pid, &d->stat, err);
	if (r == 0)
		r = proc_parse_maps(d->pid, !overlap && !bpf, &d->vmas, &d->nvmas, err);
	if (r == 0 && bpf && vmaflags_read(d->vf, d->vmas, d->nvmas, &e2) < 0) {
		pr_debug("%s; reading smaps", e2.msg);
		proc_free_maps(d->vmas, d->nvmas);
		d->vmas = NULL;
		d->nvmas = 0;
		r = proc_parse_maps(d->pid, true, &d->vmas, &d->nvmas, err);
	}
	if (r == 0)
		r = find_syscall_ip(d, err);
	if (r == 0 && full)
		r = collect_task(d, scratch_on_stack(d, &e2) == 0, err);
	if (overlap) {
		int r2 = take_smaps(d, th, &job, r < 0 ? &e2 : err);
		if (r == 0)
			r = r2;
		proc_free_maps(job.vmas, job.n);
	}
	if (r == 0)
		r = dump_prepare_tracking(d, err);
	if (r == 0)
		r = dump_mm(d, err);
	if (r == 0 && full)
		r = fill_pstree(d, err);
	return r;
}

static void fill_stats(struct dump_ctx *d, DumpStats *s)
{
	s->has_frozen_ns = s->has_total_ns = s->has_pages_scanned = s->has_pages_written = true;
	s->has_pages_zero = s->has_pages_absent = s->has_bytes_written = s->has_scan_ns = true;
	s->frozen_ns = (d->t_thawed ? d->t_thawed : mono_ns()) - d->t_frozen;
	s->total_ns = mono_ns() - d->t_start;
	s->pages_scanned = d->mstats.pages_scanned;
	s->pages_written = d->mstats.pages_written;
	s->pages_zero = d->mstats.pages_zero;
	s->pages_absent = d->mstats.pages_absent;
	s->has_pages_in_parent = true;
	s->pages_in_parent = d->mstats.pages_in_parent;
	s->bytes_written = d->mstats.bytes_written;
	s->scan_ns = d->mstats.scan_ns;
}

int ferry_dump(const struct dump_opts *o, struct ferry_err *err)
{
	struct dump_ctx d = {.o = o, .pid = o->pid, .dirfd = -1, .uffd = -1, .lazy_ls = -1};
	DumpStats stats = DUMP_STATS__INIT;
	char partname[PATH_MAX];
	int outfd = -1, r;

	inventory__init(&d.inv);
	pstree__init(&d.pstree);
	task_core__init(&d.task);
	thread_core__init(&d.core);
	mm__init(&d.mm);
	fds__init(&d.fds);
	d.t_start = mono_ns();
	img_set_durable(!o->lazy);
	r = preflight(&d, err);
	if (r == 0)
		r = check_pidns(&d, err);
	bool made_dir = access(o->dir, F_OK) < 0;
	if (r == 0)
		r = mkdir_p(o->dir, 0700, err);
	if (r < 0)
		goto out;
	outfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (outfd < 0) {
		r = ferry_fail_errno(err, "open image directory %s", o->dir);
		goto out;
	}
	snprintf(partname, sizeof(partname), ".partial-%d", d.pid);
	/* a partial directory left by a dump that died: reuse it, emptied */
	d.dirfd = openat(outfd, partname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d.dirfd >= 0) {
		remove_dir_files(d.dirfd, false);
	} else if (mkdirat(outfd, partname, 0700) < 0) {
		r = ferry_fail_errno(err, "create %s/%s", o->dir, partname);
		goto out;
	} else {
		d.dirfd = openat(outfd, partname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (d.dirfd < 0) {
		r = ferry_fail_errno(err, "open %s/%s", o->dir, partname);
		goto out;
	}
	if (o->lazy) { /* listen before anything is published */
		struct lazy_src_opts lo = {.address = o->address, .port = o->port};
		r = lazy_listen(&lo, &d.lazy_ls, err);
		if (r < 0)
			goto out;
	}
	r = infect_seize(d.pid, &d.ic, err);
	if (r < 0)
		goto out;
	d.t_frozen = mono_ns();
	pr_info("pid %d frozen", d.pid);
	new_snapshot_id(d.snapshot);
	r = collect(&d, err);
	pr_debug("pid %d: state collected at %.2f ms", d.pid, (mono_ns() - d.t_frozen) / 1e6);
	if (r == 0)
		r = dump_plan_memory(&d, err);
	if (r == 0 && o->pre_dump) {
		/* pre-dump: the data is read while the process runs again */
		r = infect_cure(&d.ic, err);
		d.t_thawed = mono_ns();
	}
	pr_debug("pid %d: memory planned at %.2f ms", d.pid, (mono_ns() - d.t_frozen) / 1e6);
	if (r == 0)
		r = dump_send_memory(&d, err);
	pr_debug("pid %d: memory sent at %.2f ms", d.pid, (mono_ns() - d.t_frozen) / 1e6);
	if (r == 0 && !o->pre_dump)
		r = write_images(&d, err);
	pr_debug("pid %d: images written at %.2f ms", d.pid, (mono_ns() - d.t_frozen) / 1e6);
	if (r < 0)
		goto out;
	fill_inventory(&d);
	fill_stats(&d, &stats);
	d.inv.stats = &stats;
	d.inv.has_complete = true;
	d.inv.complete = true;
	r = img_write(d.dirfd, "inventory.img", IMG_INVENTORY, &d.inv.base, err);
	if (r == 0 && o->pre_dump)
		r = check_alive(&d, err);
	/* the keeper learns of this round before it is published: a round the
	 * keeper does not know would be a parent without tracking behind it */
	if (r == 0)
		r = dump_finish_tracking(&d, true, err);
	if (r == 0)
		r = publish(outfd, d.dirfd, partname, err);
	if (r < 0)
		goto out;
	if (o->pre_dump)
		r = 0;
	else if (o->lazy)
		r = serve_lazy(&d, err);
	else if (o->leave_running)
		r = infect_cure(&d.ic, err);
	else
		r = kill_target(&d, err);
	pr_info("pid %d: %s done, %.1f ms frozen, %lu pages written, %lu in parent, %lu zero, "
		"%lu absent, scan %.2f ms",
		d.pid, o->pre_dump ? "pre-dump" : "dump", stats.frozen_ns / 1e6,
		(unsigned long)stats.pages_written, (unsigned long)stats.pages_in_parent,
		(unsigned long)stats.pages_zero, (unsigned long)stats.pages_absent,
		stats.scan_ns / 1e6);
out:
	if (r < 0 && d.uffd >= 0) {
		struct ferry_err e2;
		dump_finish_tracking(&d, false, &e2);
	}
	if (d.uffd >= 0)
		close(d.uffd);
	if (d.lazy_ls >= 0)
		close(d.lazy_ls);
	mem_plan_free(&d.plan);
	if (d.parent_inv)
		protobuf_c_message_free_unpacked(&d.parent_inv->base, NULL);
	if (d.parent_pm)
		protobuf_c_message_free_unpacked(&d.parent_pm->base, NULL);
	if (r < 0 && d.ic.seized) {
		struct ferry_err e2;
		if (infect_cure(&d.ic, &e2) < 0)
			pr_err("pid %d: could not put it back as it was: %s", d.pid, e2.msg);
	}
	if (d.dirfd >= 0) {
		remove_dir_files(d.dirfd, false);
		close(d.dirfd);
		unlinkat(outfd, partname, AT_REMOVEDIR);
	}
	if (outfd >= 0)
		close(outfd);
	if (r < 0 && made_dir)
		rmdir(o->dir); /* only if still empty: a failed dump leaves nothing */
	proc_free_maps(d.vmas, d.nvmas);
	vmaflags_close(d.vf);
	dz_free_all(&d);
	return r;
}
