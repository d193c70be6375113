/*
 * Memory of a dump or pre-dump round, and the dirty tracking that links the
 * rounds of a pre-copy chain.
 *
 * A round's parent is --prev-images-dir, or else the directory of the round
 * that left the tracking armed (the keeper remembers it). Holes (pages not
 * written since the parent) are written only when the tracking was armed by
 * exactly the parent round: the keeper's last snapshot id must be the
 * parent's. Otherwise the round saves every page and says so.
 *
 * Private mappings (not PROT_NONE) are registered for async write-protection;
 * one registered since an earlier round has been tracked continuously (a
 * registration is lost if the mapping is replaced or moved, and the kernel
 * clears it), one registered now is saved whole and armed for the next round.
 * Shared memory is always saved whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "dump/internal.h"
#include "mem/dirty.h"
#include "mem/keeper.h"
#include "mem/xfer_remote.h"

static int load_parent(struct dump_ctx *d, struct ferry_err *err)
{
	_cleanup_close_ int fd = open(d->parent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[64];
	int r;

	if (fd < 0)
		return ferry_fail_errno(err, "open the parent image directory %s", d->parent_dir);
	r = img_read(fd, "inventory.img", IMG_INVENTORY, (ProtobufCMessage **)&d->parent_inv, err);
	if (r < 0)
		return ferry_wrap(err, "parent %s", d->parent_dir);
	if (!d->parent_inv->has_complete || !d->parent_inv->complete)
		return ferry_refuse(err, EINVAL, "parent %s is not a complete image", d->parent_dir);
	if (d->parent_inv->root_pid != (uint32_t)d->pid || !d->parent_inv->has_start_time ||
	    d->parent_inv->start_time != d->stat.start_time)
		return ferry_refuse(err, EINVAL,
				    "parent %s holds another process (pid %u, started at %lu), "
				    "not pid %d (started at %lu)",
				    d->parent_dir, d->parent_inv->root_pid,
				    (unsigned long)d->parent_inv->start_time, d->pid,
				    (unsigned long)d->stat.start_time);
	/* a round sent to a page server keeps a record of its runs here */
	img_name(name, sizeof(name), "pagemap", d->ns_pid);
	if (faccessat(fd, name, F_OK, 0) < 0)
		img_name(name, sizeof(name), "sent-pagemap", d->ns_pid);
	r = img_read(fd, name, IMG_PAGEMAP, (ProtobufCMessage **)&d->parent_pm, err);
	if (r < 0)
		return ferry_wrap(err, "parent %s", d->parent_dir);
	return 0;
}

int dump_prepare_tracking(struct dump_ctx *d, struct ferry_err *err)
{
	const struct dump_opts *o = d->o;
	struct keeper_state ks;
	int r;

	d->uffd = -1;
	r = keeper_get(d->pid, d->stat.start_time, &ks, err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0) {
		d->keeper_existed = true;
		d->our_wp = true;
		d->uffd = ks.uffd;
		pr_info("pid %d: dirty tracking armed by round %s is in use", d->pid,
			ks.snapshot[0] ? ks.snapshot : "(none)");
	}
	if (o->no_track && d->keeper_existed) {
		close(d->uffd);
		d->uffd = -1;
		d->keeper_existed = false;
		r = keeper_stop(d->pid, d->stat.start_time, err);
		if (r < 0)
			return r;
	}
	if (o->no_track)
		pr_warn("pid %d: no dirty tracking: this round copies every page", d->pid);
	if (o->prev_dir) {
		snprintf(d->parent_path, sizeof(d->parent_path), "%s", o->prev_dir);
		if (o->prev_dir[0] == '/')
			snprintf(d->parent_dir, sizeof(d->parent_dir), "%s", o->prev_dir);
		else
			snprintf(d->parent_dir, sizeof(d->parent_dir), "%s/%s", o->dir, o->prev_dir);
	} else if (d->keeper_existed && ks.dir[0]) {
		char here[PATH_MAX], inv[PATH_MAX + 32];
		snprintf(inv, sizeof(inv), "%s/inventory.img", ks.dir);
		if (realpath(o->dir, here) && !strcmp(here, ks.dir)) {
			pr_warn("pid %d: %s was the previous round, it cannot be its own parent: "
				"this round saves every page", d->pid, ks.dir);
		} else if (access(inv, F_OK) < 0) {
			pr_warn("pid %d: the previous round %s is gone: this round saves every page",
				d->pid, ks.dir);
		} else {
			snprintf(d->parent_dir, sizeof(d->parent_dir), "%s", ks.dir);
			snprintf(d->parent_path, sizeof(d->parent_path), "%s", ks.dir);
			pr_info("pid %d: no --prev-images-dir: the previous round %s is the parent",
				d->pid, ks.dir);
		}
	}
	if (d->parent_dir[0]) {
		r = load_parent(d, err);
		if (r < 0)
			return r;
	}
	d->holes_ok = d->keeper_existed && d->parent_inv &&
		      !strcmp(ks.snapshot, d->parent_inv->snapshot_id);
	if (d->parent_inv && !d->holes_ok)
		pr_warn("pid %d: the tracking was not armed by the parent round %s: this round "
			"saves every page",
			d->pid, d->parent_inv->snapshot_id);
	return 0;
}

static bool want_tracking(const struct dump_ctx *d)
{
	return !d->o->no_track && (d->o->pre_dump || d->o->track_mem || d->keeper_existed);
}

static enum mem_area_kind area_kind(const Vma *v, bool *ok)
{
	*ok = true;
	if (vma_is_private_anon(v))
		return MA_PRIVATE_ANON;
	if (!strcmp(v->kind, "file") && !(v->flags & MAP_SHARED))
		return MA_PRIVATE_FILE;
	if (!strcmp(v->kind, "shmem") || !strcmp(v->kind, "memfd"))
		return MA_SHARED_OBJ;
	*ok = false;
	return MA_PRIVATE_ANON;
}

int dump_plan_memory(struct dump_ctx *d, struct ferry_err *err)
{
	_cleanup_free_ struct mem_area *areas = calloc(d->mm.n_vmas + 1, sizeof(*areas));
	_cleanup_free_ bool *arm = calloc(d->mm.n_vmas + 1, sizeof(bool));
	size_t n = 0;
	int r;

	if (!areas || !arm)
		return ferry_fail(err, ENOMEM, "memory areas");
	if (want_tracking(d) && d->uffd < 0) {
		r = uffd_wp_create(&d->ic, &d->uffd, err);
		if (r < 0)
			return ferry_wrap(err, "start dirty tracking");
		pr_info("pid %d: dirty tracking armed (uffd-wp async + PAGEMAP_SCAN)", d->pid);
	}
	for (size_t i = 0; i < d->mm.n_vmas; i++) {
		const Vma *v = d->mm.vmas[i];
		struct mem_area *a = &areas[n];
		bool ok;

		a->kind = area_kind(v, &ok);
		if (!ok)
			continue;
		a->start = v->start;
		a->end = v->end;
		a->pgoff = v->pgoff;
		if (d->uffd >= 0 && a->kind != MA_SHARED_OBJ && v->prot != PROT_NONE) {
			if (d->vmas[i].vmflags & VMF_UW) {
				a->rearm = true;
				a->holes = d->holes_ok;
			} else if (uffd_wp_register(d->uffd, v->start, v->end, err) == 0) {
				arm[n] = true;
				if (d->keeper_existed)
					pr_info("pid %d: new or untracked mapping %lx-%lx saved whole",
						d->pid, (unsigned long)v->start,
						(unsigned long)v->end);
			} else {
				pr_warn("pid %d: %s; it is saved whole every round", d->pid, err->msg);
			}
		}
		n++;
	}
	r = mem_plan_areas(d->pid, areas, n, d->holes_ok ? d->parent_pm : NULL, &d->plan,
			   &d->mstats, err);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (arm[i])
			r = uffd_wp_protect(d->uffd, areas[i].start, areas[i].end, err);
	return r;
}

static int open_remote(struct dump_ctx *d, struct page_xfer **x, struct ferry_err *err)
{
	struct xfer_session s = {
		.pid = d->ns_pid,
		.snapshot_id = d->snapshot,
		.parent_snapshot_id = d->parent_inv ? d->parent_inv->snapshot_id : NULL,
		.dir = d->o->dir,
		.parent_dir = d->parent_dir[0] ? d->parent_dir : NULL,
		.auth_key = d->o->auth_key,
	};
	struct page_xfer *remote = NULL, *runs = NULL;
	int r = xfer_remote_open(d->o->address, d->o->port, &s, &remote, err);

	if (r == 0)
		r = xfer_runs_open(d->dirfd, d->ns_pid, &runs, err);
	if (r == 0)
		r = xfer_tee_open(remote, runs, x, err);
	if (r < 0) {
		xfer_destroy(remote);
		xfer_destroy(runs);
	}
	return r;
}

/* Post-copy: the data of private anonymous pages stays on the source. */
static void make_lazy(struct dump_ctx *d)
{
	size_t k = 0; /* plan runs and VMAs are both sorted: one walk */

	for (size_t i = 0; i < d->plan.n; i++) {
		struct plan_run *p = &d->plan.runs[i];
		while (k < d->mm.n_vmas && d->mm.vmas[k]->end <= p->vaddr)
			k++;
		if (!(p->flags & FERRY_PR_PRESENT) || k == d->mm.n_vmas ||
		    p->vaddr < d->mm.vmas[k]->start || !vma_is_private_anon(d->mm.vmas[k]))
			continue;
		p->flags = FERRY_PR_LAZY;
		d->mstats.pages_written -= p->nr_pages;
	}
}

int dump_send_memory(struct dump_ctx *d, struct ferry_err *err)
{
	struct page_xfer *x = NULL;
	int r;

	if (d->o->lazy)
		make_lazy(d);
	if (d->o->page_server) {
		r = open_remote(d, &x, err);
	} else {
		r = xfer_local_open(d->dirfd, d->ns_pid, &x, err);
		if (r == 0)
			xfer_local_set_snapshot(x, d->snapshot,
						d->parent_inv ? d->parent_inv->snapshot_id : NULL);
	}
	if (r < 0)
		return r;
	r = mem_transfer(d->pid, &d->plan, d->o->pre_dump, x, &d->mstats, err);
	if (r == 0)
		r = xfer_commit(x, err);
	xfer_destroy(x);
	return r;
}

int dump_finish_tracking(struct dump_ctx *d, bool ok, struct ferry_err *err)
{
	char abs[PATH_MAX];
	int r = 0;

	if (d->uffd < 0)
		return 0;
	if (!ok || !d->o->pre_dump) {
		/* a failed round, or the final dump: tracking ends here */
		struct ferry_err e2;
		if (keeper_stop(d->pid, d->stat.start_time, &e2) < 0)
			pr_warn("%s", e2.msg);
	} else {
		if (!d->keeper_existed)
			r = keeper_start(d->pid, d->stat.start_time, d->uffd, err);
		if (r == 0 && !realpath(d->o->dir, abs))
			r = ferry_fail_errno(err, "resolve %s", d->o->dir);
		if (r == 0)
			r = keeper_set(d->pid, d->stat.start_time, d->snapshot, abs, err);
	}
	close(d->uffd);
	d->uffd = -1;
	return r;
}

int dump_untrack(pid_t pid, struct ferry_err *err)
{
	struct proc_stat st;
	int r = proc_parse_stat(pid, &st, err);

	if (r < 0)
		return r;
	return keeper_stop(pid, st.start_time, err);
}
