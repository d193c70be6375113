/*
 * Reading the images and deciding whether they can run here, before any
 * process is created.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileid.h"
#include "core/log.h"
#include "core/util.h"
#include "core/vdso.h"
#include "proc/proc.h"
#include "restore/internal.h"

static int load_one(struct restore_ctx *r, const char *prefix, unsigned id, enum img_kind kind,
		    ProtobufCMessage **out, struct ferry_err *err)
{
	char name[64];

	if (id)
		img_name(name, sizeof(name), prefix, id);
	else
		snprintf(name, sizeof(name), "%s.img", prefix);
	return img_read(r->dirfd, name, kind, out, err);
}

int restore_load(struct restore_ctx *r, struct ferry_err *err)
{
	int ret;

	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return ferry_fail_errno(err, "open image directory %s", r->dir);
	if (faccessat(r->dirfd, "inventory.img", F_OK, 0) < 0)
		return ferry_refuse(err, ENOENT,
				  "%s has no inventory.img: not an image directory, or an "
				  "incomplete dump",
				  r->dir);
	ret = load_one(r, "inventory", 0, IMG_INVENTORY, (ProtobufCMessage **)&r->inv, err);
	if (ret < 0)
		return ret;
	if (r->inv->format_version != FERRY_IMG_VERSION)
		return ferry_refuse(err, EINVAL, "%s: image format %u, this ferry reads %u", r->dir,
				  r->inv->format_version, FERRY_IMG_VERSION);
	if (!r->inv->has_complete || !r->inv->complete)
		return ferry_refuse(err, EINVAL, "%s: the dump did not complete", r->dir);
	if (r->inv->has_pre_dump && r->inv->pre_dump)
		return ferry_refuse(err, EINVAL,
				  "%s holds a pre-dump (memory only): restore from the final dump",
				  r->dir);
	ret = load_one(r, "pstree", 0, IMG_PSTREE, (ProtobufCMessage **)&r->pstree, err);
	if (ret < 0)
		return ret;
	if (r->pstree->n_entries != 1 || r->pstree->entries[0]->n_threads != 1)
		return ferry_refuse(err, EOPNOTSUPP,
				  "%s: %zu processes; this ferry restores exactly one single-threaded process",
				  r->dir, r->pstree->n_entries);
	r->pe = r->pstree->entries[0];
	if (!strcmp(r->pstree->pid_ns_mode, "ferry-run"))
		r->ferry_run = true;
	else if (strcmp(r->pstree->pid_ns_mode, "host"))
		return ferry_refuse(err, EINVAL, "%s: unknown pid namespace mode '%s'", r->dir,
				  r->pstree->pid_ns_mode);
	if (r->pe->pid < 1 || r->pe->pid >= 4194304)
		return ferry_refuse(err, EINVAL, "%s: pid %u out of range", r->dir, r->pe->pid);
	unsigned pid = r->pe->pid;
	ret = load_one(r, "task", pid, IMG_TASK, (ProtobufCMessage **)&r->task, err);
	if (ret == 0)
		ret = load_one(r, "core", pid, IMG_CORE, (ProtobufCMessage **)&r->core, err);
	if (ret == 0)
		ret = load_one(r, "mm", pid, IMG_MM, (ProtobufCMessage **)&r->mm, err);
	if (ret == 0)
		ret = load_one(r, "fds", pid, IMG_FDS, (ProtobufCMessage **)&r->fds, err);
	if (ret == 0)
		ret = page_read_open_local(r->dir, pid, &r->pr, err);
	return ret;
}

void restore_free(struct restore_ctx *r)
{
	ProtobufCMessage *msgs[] = {&r->inv->base, &r->pstree->base, &r->task->base,
				    &r->core->base, &r->mm->base, &r->fds->base};

	for (size_t i = 0; i < ARRAY_SIZE(msgs); i++)
		if (msgs[i]) /* base is the first member: NULL when not loaded */
			protobuf_c_message_free_unpacked(msgs[i], NULL);
	page_read_close(&r->pr);
	if (r->dirfd >= 0)
		close(r->dirfd);
}

static int check_cpu(struct restore_ctx *r, struct ferry_err *err)
{
	uint64_t host = infect_host_xfeatures();

	if (strcmp(r->inv->arch, "x86_64"))
		return ferry_refuse(err, EINVAL, "the image is for %s, this machine is x86_64",
				  r->inv->arch);
	if (r->inv->xfeatures & ~host)
		return ferry_refuse(err, EINVAL,
				  "the image uses xsave features %#lx this CPU lacks (image %#lx, here %#lx)",
				  (unsigned long)(r->inv->xfeatures & ~host),
				  (unsigned long)r->inv->xfeatures, (unsigned long)host);
	if (r->core->gpregs.len != sizeof(struct user_regs_struct))
		return ferry_refuse(err, EINVAL, "core image: registers have %zu bytes, expected %zu",
				  r->core->gpregs.len, sizeof(struct user_regs_struct));
	if (r->core->xsave.len < 576 || r->core->xsave.len > XSAVE_MAX)
		return ferry_refuse(err, EINVAL, "core image: xsave area of %zu bytes",
				  r->core->xsave.len);
	return 0;
}

static int check_vdso(struct restore_ctx *r, struct ferry_err *err)
{
	const struct vdso_layout l = r->vdso;
	struct vdso_sym syms[64];
	int n;

	if (!r->mm->n_vdso_syms)
		return 0;
	if (!l.vdso_start)
		return ferry_refuse(err, ENOENT, "this machine has no vDSO, the image needs one");
	if (l.vdso_size != r->mm->vdso_size || l.vvar_size != r->mm->vvar_size ||
	    l.vclock_size != r->mm->vvar_vclock_size)
		return ferry_refuse(err, EINVAL,
				  "vDSO layout differs: image vvar %lu vclock %lu vdso %lu, here %lu %lu %lu",
				  (unsigned long)r->mm->vvar_size,
				  (unsigned long)r->mm->vvar_vclock_size,
				  (unsigned long)r->mm->vdso_size, (unsigned long)l.vvar_size,
				  (unsigned long)l.vclock_size, (unsigned long)l.vdso_size);
	n = vdso_parse_syms((const uint8_t *)l.vdso_start, l.vdso_size, syms, ARRAY_SIZE(syms));
	if (n < 0)
		return ferry_refuse(err, EINVAL, "cannot parse this machine's vDSO");
	if ((size_t)n != r->mm->n_vdso_syms)
		return ferry_refuse(err, EINVAL, "vDSO differs: %d symbols here, %zu in the image", n,
				  r->mm->n_vdso_syms);
	for (size_t i = 0; i < r->mm->n_vdso_syms; i++) {
		const VdsoSym *s = r->mm->vdso_syms[i];
		int j;
		for (j = 0; j < n; j++)
			if (!strcmp(syms[j].name, s->name))
				break;
		if (j == n || syms[j].offset != s->offset)
			return ferry_refuse(err, EINVAL, "vDSO differs: symbol %s %s", s->name,
					  j == n ? "is missing here" : "moved");
	}
	return 0;
}

static int check_file(const FileId *f, struct ferry_err *err)
{
	struct file_ident want = {0}, have;
	int ret;

	want.size = f->size;
	want.mtime_ns = f->has_mtime_ns ? f->mtime_ns : 0;
	want.mode = f->has_mode ? f->mode : S_IFREG;
	if (f->has_build_id && f->build_id.len <= sizeof(want.build_id)) {
		memcpy(want.build_id, f->build_id.data, f->build_id.len);
		want.build_id_len = f->build_id.len;
	}
	ret = fileid_of_path(f->path, &have, err);
	if (ret < 0)
		return ret;
	if (!want.build_id_len && have.build_id_len)
		have.build_id_len = 0; /* identified by mtime in the image */
	return fileid_compare(f->path, &want, &have, err);
}

static int check_files(struct restore_ctx *r, struct ferry_err *err)
{
	int ret;

	for (size_t i = 0; i < r->mm->n_files; i++) {
		ret = check_file(r->mm->files[i], err);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < r->fds->n_ofds; i++) {
		const OpenFile *f = r->fds->ofds[i];
		if (f->id) {
			ret = check_file(f->id, err);
			if (ret < 0)
				return ret;
		} else if (f->path && !(f->has_unlinked && f->unlinked) && strcmp(f->kind, "tty") &&
			   access(f->path, F_OK) < 0) {
			return ferry_fail_errno(err, "%s", f->path);
		}
		if (!strcmp(f->kind, "tty") && !r->o->shell_job)
			return ferry_refuse(err, EINVAL,
					  "the image uses a terminal: restore with --shell-job");
	}
	for (size_t i = 0; i < r->fds->n_fds; i++)
		if (r->fds->fds[i]->ofd >= r->fds->n_ofds || r->fds->fds[i]->fd < 0)
			return ferry_refuse(err, EINVAL, "fds image: fd %d is malformed",
					  r->fds->fds[i]->fd);
	for (size_t i = 0; i < r->mm->n_vmas; i++) {
		const Vma *v = r->mm->vmas[i];
		if (v->start >= v->end || (v->start | v->end) & (PAGE_SIZE - 1) ||
		    (v->has_file && (size_t)v->file >= r->mm->n_files))
			return ferry_refuse(err, EINVAL, "mm image: mapping %lx-%lx is malformed",
					  (unsigned long)v->start, (unsigned long)v->end);
	}
	return 0;
}

/* task flag PF_EXITING, as /proc/PID/stat shows it (field 9) */
#define PF_EXITING_FLAG 0x4

static int check_pid(struct restore_ctx *r, struct ferry_err *err)
{
	char path[64], *comm = NULL;

	if (r->ferry_run)
		return 0;
	/* a just-dumped process may still be exiting (the dump does not wait while
	 * the kernel frees its memory), then a zombie until its parent reaps it */
	uint64_t t0 = mono_ns();
	for (int i = 0; i < 300; i++) {
		struct proc_stat st;
		struct ferry_err e2;
		if (proc_parse_stat(r->pe->pid, &st, &e2) < 0 ||
		    (st.state != 'Z' && st.state != 'X' && !(st.flags & PF_EXITING_FLAG)))
			break;
		usleep(i < 20 ? 1000 : 10000);
	}
	r->zombie_wait_ns = mono_ns() - t0;
	if (r->zombie_wait_ns > 20000000ULL)
		pr_info("waited %.0f ms for the old pid %u to exit and be reaped",
			r->zombie_wait_ns / 1e6, r->pe->pid);
	snprintf(path, sizeof(path), "/proc/%u/comm", r->pe->pid);
	if (access(path, F_OK) == 0 || kill(r->pe->pid, 0) == 0 || errno != ESRCH) {
		struct ferry_err e2;
		if (read_file(path, &comm, NULL, &e2) == 0)
			comm[strcspn(comm, "\n")] = '\0';
		int ret = ferry_refuse(err, EEXIST, "pid %u is in use (by %s)", r->pe->pid,
				     comm ? comm : "another process");
		free(comm);
		return ret;
	}
	return 0;
}

int restore_check(struct restore_ctx *r, struct ferry_err *err)
{
	int ret = check_cpu(r, err);

	vdso_self_layout(&r->vdso); /* all zero if there is none */

	if (ret == 0)
		ret = check_vdso(r, err);
	if (ret == 0)
		ret = check_files(r, err);
	if (ret == 0)
		ret = check_pid(r, err);
	for (size_t i = 0; ret == 0 && !r->o->lazy && i < page_read_nr_runs(&r->pr); i++)
		if (page_read_run(&r->pr, i)->flags & FERRY_PR_LAZY)
			ret = ferry_refuse(err, EINVAL,
					   "%s was dumped with --lazy-pages: its memory is on the "
					   "source; restore with --lazy-pages",
					   r->dir);
	return ret;
}

static void *verify_thread(void *arg)
{
	struct restore_ctx *r = arg;

	r->verify_ret = page_read_verify(&r->pr, &r->verify_err);
	return NULL;
}

int restore_verify_start(struct restore_ctx *r, struct ferry_err *err)
{
	int e = pthread_create(&r->verify_tid, NULL, verify_thread, r);

	if (e)
		return ferry_fail(err, e, "start the page checksum thread");
	r->verifying = true;
	return 0;
}

int restore_verify_wait(struct restore_ctx *r, struct ferry_err *err)
{
	if (!r->verifying)
		return 0;
	pthread_join(r->verify_tid, NULL);
	r->verifying = false;
	if (r->verify_ret < 0) {
		*err = r->verify_err;
		return r->verify_ret;
	}
	return 0;
}
