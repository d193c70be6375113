/*
 * Rebuilding the address space inside the stopped child, by injected system
 * calls executed from its vDSO:
 *
 *   1. unmap everything of ferry's but [vvar] [vvar_vclock] [vdso]
 *   2. move those three, together, to the image's addresses (through a hop
 *      if the old and new ranges overlap); the syscall instruction moves too
 *   3. map each VMA of the image (writable first where pages will be filled)
 *   4. map a scratch area, queue the page reads, sync them as preadv calls
 *      from the page files straight into the child's memory; private
 *      anonymous memory is filled with UFFDIO_COPY from the page files
 *      mapped into ferry instead (no zeroing of fresh pages first)
 *   5. set the final protections and madvise flags
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "mem/kapi.h"

#include "core/log.h"
#include "core/util.h"
#include "core/vdso.h"
#include "restore/internal.h"

#define TASK_SIZE_MAX 0x7ffffffff000UL
#define SCRATCH_SIZE (128UL << 10)
/* scratch: iovecs at 0 (16 KiB), arguments up to 64 KiB, a discard buffer above */
#define SCRATCH_DISCARD (64UL << 10)
#define DISCARD_LEN (64UL << 10)
#define MAX_GAP (256UL << 10)

static const Vma *find_kind(const Mm *mm, const char *kind)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (!strcmp(mm->vmas[i]->kind, kind))
			return mm->vmas[i];
	return NULL;
}

static bool is_special(const Vma *v)
{
	return !strcmp(v->kind, "vdso") || !strcmp(v->kind, "vvar") ||
	       !strcmp(v->kind, "vvar_vclock") || !strcmp(v->kind, "vsyscall");
}

static int move_block(struct restore_ctx *r, const struct vdso_layout *l, uint64_t from,
		      uint64_t to, struct ferry_err *err)
{
	struct {
		uint64_t off, size;
	} parts[3] = {
		{0, l->vvar_size},
		{l->vclock_start ? l->vclock_start - l->vvar_start : 0, l->vclock_size},
		{l->vdso_start - l->vvar_start, l->vdso_size},
	};

	for (int i = 0; i < 3; i++) {
		if (!parts[i].size)
			continue;
		int ret = infect_syscall_ok(&r->ic, "move the vDSO", __NR_mremap, NULL,
					    from + parts[i].off, parts[i].size, parts[i].size,
					    MREMAP_MAYMOVE | MREMAP_FIXED, to + parts[i].off, 0, err);
		if (ret < 0)
			return ret;
		if (i == 2)
			r->ic.syscall_ip = r->ic.syscall_ip - from + to;
	}
	return 0;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int place_vdso(struct restore_ctx *r, struct ferry_err *err)
{
	const struct vdso_layout l = r->vdso;
	const Vma *vvar = find_kind(r->mm, "vvar");
	const Vma *vdso = find_kind(r->mm, "vdso");
	int ret;

	if (!l.vdso_start || !l.vvar_start)
		return ferry_fail(err, ENOENT, "cannot find ferry's own vDSO");
	uint64_t start = l.vvar_start, len = l.vdso_start + l.vdso_size - l.vvar_start;
	ret = infect_syscall_ok(&r->ic, "unmap ferry below the vDSO", __NR_munmap, NULL, 0, start,
				0, 0, 0, 0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "unmap ferry above the vDSO", __NR_munmap, NULL,
					start + len, TASK_SIZE_MAX - (start + len), 0, 0, 0, 0, err);
	if (ret < 0)
		return ret;
	if (!vdso || !vvar) /* the image had none: ferry's goes away too */
		return infect_syscall_ok(&r->ic, "unmap the vDSO", __NR_munmap, NULL, start, len, 0,
					 0, 0, 0, err);
	if (vdso->start - vvar->start != l.vdso_start - l.vvar_start)
		return ferry_fail(err, EINVAL, "vDSO layout differs from the image's");
	uint64_t target = vvar->start;
	if (target == start)
		return 0;
	if (overlaps(start, len, target, len)) {
		uint64_t hop = target >= (1UL << 45) ? (1UL << 40) : (3UL << 44);
		ret = move_block(r, &l, start, hop, err);
		start = hop;
		if (ret < 0)
			return ret;
	}
	return move_block(r, &l, start, target, err);
}

static bool vma_needs_fill(struct restore_ctx *r, const Vma *v, size_t *cursor)
{
	size_t n = page_read_nr_runs(&r->pr);

	while (*cursor < n) {
		const PageRun *run = page_read_run(&r->pr, *cursor);
		if (run->vaddr + run->nr_pages * PAGE_SIZE <= v->start) {
			(*cursor)++;
			continue;
		}
		return run->vaddr < v->end && (run->flags & (FERRY_PR_PRESENT | FERRY_PR_IN_PARENT)) &&
		       !(r->o->lazy && vma_is_private_anon(v));
	}
	return false;
}

/* A place for the scratch area that no mapping of the image needs. */
static uint64_t pick_scratch(const Mm *mm)
{
	uint64_t at = 0x10000000;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		if (v->end <= at || !strcmp(v->kind, "vsyscall"))
			continue;
		if (v->start >= at + SCRATCH_SIZE)
			break;
		at = v->end;
	}
	return at;
}

/* The first mapping of the memfd object that mapping idx maps. */
static size_t first_of_memfd(const Mm *mm, size_t idx)
{
	for (size_t i = 0; i < idx; i++)
		if (!strcmp(mm->vmas[i]->kind, "memfd") && mm->vmas[i]->shmid == mm->vmas[idx]->shmid)
			return i;
	return idx;
}

static bool last_of_memfd(const Mm *mm, size_t idx)
{
	for (size_t i = idx + 1; i < mm->n_vmas; i++)
		if (!strcmp(mm->vmas[i]->kind, "memfd") && mm->vmas[i]->shmid == mm->vmas[idx]->shmid)
			return false;
	return true;
}

/* memfd mappings: one memfd per object, made in the child at its first
 * mapping, kept (fds[first]) until its last mapping. */
static int memfd_for(struct restore_ctx *r, size_t idx, long *fds, struct ferry_err *err)
{
	const Vma *v = r->mm->vmas[idx];
	uint64_t size = 0;
	char name[250];
	int ret;

	if (first_of_memfd(r->mm, idx) != idx)
		return 0;
	for (size_t i = idx; i < r->mm->n_vmas; i++) {
		const Vma *p = r->mm->vmas[i];
		if (!strcmp(p->kind, "memfd") && p->shmid == v->shmid &&
		    p->pgoff + (p->end - p->start) > size)
			size = p->pgoff + (p->end - p->start);
	}
	snprintf(name, sizeof(name), "%s", v->name ? v->name : "ferry");
	name[strcspn(name, " ")] = '\0'; /* drop the " (deleted)" the kernel shows */
	ret = infect_write(&r->ic, r->ic.scratch, name, strlen(name) + 1, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "create memfd", __NR_memfd_create, &fds[idx],
					r->ic.scratch, 0, 0, 0, 0, 0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "size memfd", __NR_ftruncate, NULL, fds[idx], size,
					0, 0, 0, 0, err);
	return ret;
}

static int map_vma(struct restore_ctx *r, const Vma *v, bool fill, long memfd,
		   struct ferry_err *err)
{
	uint32_t prot = v->prot | (fill ? PROT_WRITE : 0);
	uint32_t flags = MAP_FIXED | (v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN |
						  MAP_NORESERVE));
	long fd = -1, off = 0;
	char what[96];

	if (!strcmp(v->kind, "file")) {
		fd = helper_file_fd(r, v->file);
		off = v->pgoff;
	} else if (!strcmp(v->kind, "memfd")) {
		fd = memfd;
		off = v->pgoff;
		flags = (flags & ~MAP_PRIVATE) | MAP_SHARED;
	} else {
		flags |= MAP_ANONYMOUS;
		if (!strcmp(v->kind, "shmem"))
			flags = (flags & ~MAP_PRIVATE) | MAP_SHARED;
	}
	snprintf(what, sizeof(what), "map %lx-%lx (%s%s%s)", (unsigned long)v->start,
		 (unsigned long)v->end, v->kind, v->has_file ? " " : "",
		 v->has_file ? r->mm->files[v->file]->path : "");
	return infect_syscall_ok(&r->ic, what, __NR_mmap, NULL, v->start, v->end - v->start, prot,
				 flags, fd, off, err);
}

static int issue_preadv(void *ctx, int layer, uint64_t off, const struct iovec *iov, int n,
			struct ferry_err *err)
{
	struct restore_ctx *r = ctx;
	struct iovec cur[PRQ_MAX_IOV];
	uint64_t total = 0;
	int ret;

	memcpy(cur, iov, n * sizeof(*iov));
	for (int i = 0; i < n; i++)
		total += cur[i].iov_len;
	while (total) {
		long got;
		ret = infect_write(&r->ic, r->ic.scratch, cur, n * sizeof(*cur), err);
		if (ret < 0)
			return ret;
		ret = infect_syscall(&r->ic, __NR_preadv, &got, helper_layer_fd(r, layer),
				     r->ic.scratch, n, off, 0, 0, err);
		if (ret < 0)
			return ret;
		if (got <= 0)
			return ferry_fail(err, got < 0 ? (int)-got : EIO,
					  "read pages into %p (%d ranges) from %s at offset %lu",
					  cur[0].iov_base, n, r->pr.layers[layer].path,
					  (unsigned long)off);
		total -= got;
		off += got;

		while (got > 0) { /* a short read: drop what arrived */
			if ((uint64_t)got >= cur[0].iov_len) {
				got -= cur[0].iov_len;
				memmove(cur, cur + 1, --n * sizeof(*cur));
			} else {
				cur[0].iov_base = (char *)cur[0].iov_base + got;
				cur[0].iov_len -= got;
				got = 0;
			}
		}

	}
	return 0;
}

/* A userfaultfd of the child's mm: created inside the child (it binds to the
 * caller's mm), taken into ferry, and closed in the child again. */
static int take_uffd(struct restore_ctx *r, uint64_t features, int *out, struct ferry_err *err)
{
	long tfd;
	int ret = infect_syscall_ok(&r->ic, "create a userfaultfd", __NR_userfaultfd, &tfd,
				    O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, err);

	if (ret < 0)
		return ret;
	_cleanup_close_ int pidfd = syscall(SYS_pidfd_open, r->pid, 0);
	_cleanup_close_ int uffd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
	if (uffd < 0)
		return ferry_fail_errno(err, "take the userfaultfd of pid %d", r->pid);
	ret = infect_syscall_ok(&r->ic, "close the userfaultfd", __NR_close, NULL, tfd, 0, 0, 0, 0,
				0, err);
	if (ret < 0)
		return ret;
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return ferry_fail_errno(err, "set up the userfaultfd of pid %d", r->pid);
	*out = steal_fd(&uffd);
	return 0;
}

static int register_missing(int uffd, const Vma *v, struct ferry_err *err)
{
	struct uffdio_register reg = {
		.range = {.start = v->start, .len = v->end - v->start},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return ferry_fail_errno(err, "register %lx-%lx with a userfaultfd",
					(unsigned long)v->start, (unsigned long)v->end);
	return 0;
}

static int make_uffd(struct restore_ctx *r, struct ferry_err *err)
{
	int ret = take_uffd(r,
			    UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
				    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
			    &r->uffd, err);

	for (size_t i = 0; ret == 0 && i < r->mm->n_vmas; i++) {
		const Vma *v = r->mm->vmas[i];
		if (!vma_is_private_anon(v))
			continue;
		ret = register_missing(r->uffd, v, err);
		r->lazy_pages += (v->end - v->start) / PAGE_SIZE;
	}
	return ret;
}

static int hand_over(struct restore_ctx *r, struct ferry_err *err)
{
	const struct user_regs_struct *regs = (const void *)r->core->gpregs.data;

	if (!r->o->lazy_handover)
		return 0;
	return r->o->lazy_handover(r->o->lazy_ctx, r->uffd, r->pid,
				   PAGE_ALIGN_DOWN(regs->rsp), err);
}

/*
 * Private anonymous memory is filled with UFFDIO_COPY from the page files
 * mapped into ferry: the kernel allocates each page and copies into it, where
 * preadv into fresh memory first faults in a zeroed page and then copies over
 * it (measured here: 2.9 GB/s against 1.1 GB/s for 1 GiB, and above a plain
 * memset of fresh memory). The userfaultfd is closed afterwards, which
 * unregisters the ranges again.
 */
struct anon_fill {
	int uffd;
	void **maps; /* per layer, mapped on first use */
};

static int copy_piece(struct restore_ctx *r, struct anon_fill *f, const struct prq_piece *p,
		      struct ferry_err *err)
{
	const struct page_layer *l = &r->pr.layers[p->layer];
	uint64_t size = FERRY_PAGES_DATA_OFF + l->data_len;

	if (p->off > size || p->len > size - p->off)
		return ferry_fail(err, EIO, "pages %#lx-%#lx: %s holds %lu bytes, not up to %lu",
				  (unsigned long)p->addr, (unsigned long)(p->addr + p->len), l->path,
				  (unsigned long)size, (unsigned long)(p->off + p->len));
	if (!f->maps[p->layer]) {
		void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, l->fd, 0);
		if (m == MAP_FAILED)
			return ferry_fail_errno(err, "map %s", l->path);
		f->maps[p->layer] = m;
	}
	for (uint64_t done = 0; done < p->len;) {
		struct uffdio_copy c = {
			.dst = p->addr + done,
			.src = (uint64_t)(uintptr_t)f->maps[p->layer] + p->off + done,
			.len = p->len - done,
		};
		if (ioctl(f->uffd, UFFDIO_COPY, &c) == 0) {
			done = p->len;
		} else if (errno == EAGAIN && c.copy > 0) {
			done += c.copy;
		} else {
			return ferry_fail_errno(err, "copy pages %#lx-%#lx from %s at offset %lu",
						(unsigned long)c.dst, (unsigned long)(p->addr + p->len),
						l->path, (unsigned long)(p->off + done));
		}
	}
	return 0;
}

static int copy_anon(struct restore_ctx *r, struct anon_fill *f, const Vma *v,
		     struct ferry_err *err)
{
	struct pr_queue q = {0};
	int ret = page_read_queue_range(&r->pr, v->start, v->end, &q, err);

	if (ret == 0 && q.n && f->uffd < 0) /* only once some memory needs it */
		ret = take_uffd(r, 0, &f->uffd, err);
	if (ret == 0 && q.n)
		ret = register_missing(f->uffd, v, err);
	for (size_t i = 0; ret == 0 && i < q.n; i++)
		ret = copy_piece(r, f, &q.p[i], err);
	prq_free(&q);
	return ret;
}

static int fill_anon(struct restore_ctx *r, struct ferry_err *err)
{
	struct anon_fill f = {.uffd = -1, .maps = calloc(r->pr.nr_layers, sizeof(void *))};
	int ret = f.maps ? 0 : ferry_fail(err, ENOMEM, "layers");

	for (size_t i = 0; ret == 0 && i < r->mm->n_vmas; i++) {
		const Vma *v = r->mm->vmas[i];
		if (!is_special(v) && vma_is_private_anon(v))
			ret = copy_anon(r, &f, v, err);
	}
	if (f.uffd >= 0)
		close(f.uffd);
	for (int i = 0; f.maps && i < r->pr.nr_layers; i++)
		if (f.maps[i])
			munmap(f.maps[i], FERRY_PAGES_DATA_OFF + r->pr.layers[i].data_len);
	free(f.maps);
	return ret;
}

static int fill_pages(struct restore_ctx *r, struct ferry_err *err)
{
	struct pr_queue q = {0};
	int ret = 0;

	/* private anonymous memory is copied below, or in a lazy restore comes later */
	for (size_t i = 0; ret == 0 && i < r->mm->n_vmas; i++) {
		const Vma *v = r->mm->vmas[i];
		if (is_special(v) || vma_is_private_anon(v))
			continue;
		ret = page_read_queue_range(&r->pr, v->start, v->end, &q, err);
	}
	if (ret == 0)
		ret = prq_sync_gaps(&q, issue_preadv, r, r->ic.scratch + SCRATCH_DISCARD, DISCARD_LEN,
				    MAX_GAP, err);
	prq_free(&q);
	if (ret == 0 && !r->o->lazy)
		ret = fill_anon(r, err);
	return ret;
}

static int apply_madvise(struct restore_ctx *r, const Vma *v, struct ferry_err *err)
{
	static const struct {
		uint32_t bit;
		int advice;
	} advs[] = {
		{FERRY_MADV_DONTFORK, MADV_DONTFORK},   {FERRY_MADV_DONTDUMP, MADV_DONTDUMP},
		{FERRY_MADV_HUGEPAGE, MADV_HUGEPAGE},   {FERRY_MADV_NOHUGEPAGE, MADV_NOHUGEPAGE},
		{FERRY_MADV_WIPEONFORK, MADV_WIPEONFORK}, {FERRY_MADV_MERGEABLE, MADV_MERGEABLE},
	};

	for (size_t i = 0; i < ARRAY_SIZE(advs); i++) {
		if (!(v->madv & advs[i].bit))
			continue;
		int ret = infect_syscall_ok(&r->ic, "madvise", __NR_madvise, NULL, v->start,
					    v->end - v->start, advs[i].advice, 0, 0, 0, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int restore_mm(struct restore_ctx *r, struct ferry_err *err)
{
	_cleanup_free_ bool *filled = calloc(r->mm->n_vmas + 1, sizeof(bool));
	_cleanup_free_ long *memfds = calloc(r->mm->n_vmas + 1, sizeof(long));
	size_t cursor = 0;
	int ret;

	if (!filled || !memfds)
		return ferry_fail(err, ENOMEM, "vmas");

	ret = place_vdso(r, err);
	if (ret == 0)
		ret = infect_scratch_map_at(&r->ic, pick_scratch(r->mm), SCRATCH_SIZE, err);
	for (size_t i = 0; i < r->mm->n_vmas && ret == 0; i++) {
		const Vma *v = r->mm->vmas[i];
		if (is_special(v))
			continue;
		filled[i] = vma_needs_fill(r, v, &cursor);
		bool is_memfd = !strcmp(v->kind, "memfd");
		long memfd = -1;
		if (is_memfd) {
			ret = memfd_for(r, i, memfds, err);
			memfd = memfds[first_of_memfd(r->mm, i)];
		}
		if (ret == 0)
			ret = map_vma(r, v, filled[i], memfd, err);
		if (ret == 0 && is_memfd && last_of_memfd(r->mm, i))
			ret = infect_syscall_ok(&r->ic, "close memfd", __NR_close, NULL, memfd, 0, 0,
						0, 0, 0, err);
	}
	if (ret == 0)
		ret = fill_pages(r, err);
	if (ret == 0 && r->o->lazy)
		ret = make_uffd(r, err);
	if (ret == 0 && r->o->lazy)
		ret = hand_over(r, err);
	for (size_t i = 0; i < r->mm->n_vmas && ret == 0; i++) {
		const Vma *v = r->mm->vmas[i];
		if (is_special(v))
			continue;
		if (filled[i] && !(v->prot & PROT_WRITE))
			ret = infect_syscall_ok(&r->ic, "set protection", __NR_mprotect, NULL,
						v->start, v->end - v->start, v->prot, 0, 0, 0, err);
		if (ret == 0 && v->has_madv && v->madv)
			ret = apply_madvise(r, v, err);
	}
	return ret;
}
