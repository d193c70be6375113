/*
 * The address space: every VMA with its backing, the mm fields PR_SET_MM_MAP
 * restores, the auxiliary vector, the executable, the vDSO's symbols, and the
 * list of memory areas whose pages must be saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fileid.h"
#include "core/log.h"
#include "core/util.h"
#include "core/vdso.h"
#include "dump/internal.h"

int dump_file_id(struct dump_ctx *d, const char *path, int fd, FileId **out,
		 struct ferry_err *err)
{
	struct file_ident id;
	int r;

	r = fd >= 0 ? fileid_of_fd(fd, path, &id, err) : fileid_of_path(path, &id, err);
	if (r < 0)
		return r;
	FileId *f = dz_alloc(d, sizeof(*f));
	if (!f)
		return ferry_fail(err, ENOMEM, "file id");
	file_id__init(f);
	f->path = dz_strdup(d, path);
	f->size = id.size;
	f->has_mode = true;
	f->mode = id.mode;
	if (id.build_id_len) {
		f->has_build_id = true;
		f->build_id.data = dz_alloc(d, id.build_id_len);
		if (!f->build_id.data)
			return ferry_fail(err, ENOMEM, "file id");
		memcpy(f->build_id.data, id.build_id, id.build_id_len);
		f->build_id.len = id.build_id_len;
	} else {
		f->has_mtime_ns = true;
		f->mtime_ns = id.mtime_ns;
	}
	*out = f;
	return 0;
}

/*
 * Index of path in mm.files, adding it (with its identity, read through
 * open_path: /proc/PID/map_files/... or /proc/PID/exe open the very file the
 * process has, even if its path was replaced since) if new.
 */
static int mm_file_index(struct dump_ctx *d, const char *path, const char *open_path,
			 struct ferry_err *err)
{
	FileId *f;
	int r;

	for (size_t i = 0; i < d->mm.n_files; i++)
		if (!strcmp(d->mm.files[i]->path, path))
			return i;
	_cleanup_close_ int fd = open(open_path, O_RDONLY | O_CLOEXEC);
	r = dump_file_id(d, path, fd, &f, err);
	if (r < 0)
		return r;
	if (dz_push(d, (void ***)&d->mm.files, &d->mm.n_files, f) < 0)
		return ferry_fail(err, ENOMEM, "files");
	return d->mm.n_files - 1;
}

static uint32_t madv_bits(uint32_t vmf)
{
	uint32_t m = 0;

	if (vmf & VMF_DC)
		m |= FERRY_MADV_DONTFORK;
	if (vmf & VMF_DD)
		m |= FERRY_MADV_DONTDUMP;
	if (vmf & VMF_HG)
		m |= FERRY_MADV_HUGEPAGE;
	if (vmf & VMF_NH)
		m |= FERRY_MADV_NOHUGEPAGE;
	if (vmf & VMF_WF)
		m |= FERRY_MADV_WIPEONFORK;
	if (vmf & VMF_MG)
		m |= FERRY_MADV_MERGEABLE;
	return m;
}

static int refuse_vma(const struct proc_vma *v, const char *what, struct ferry_err *err)
{
	return ferry_refuse(err, EOPNOTSUPP, "mapping %lx-%lx (%s) is %s: not supported yet",
			  (unsigned long)v->start, (unsigned long)v->end, v->path ? v->path : "anon",
			  what);
}

static const char *special_kind(const char *path)
{
	static const char *names[][2] = {
		{"[vdso]", "vdso"}, {"[vvar]", "vvar"}, {"[vvar_vclock]", "vvar_vclock"},
		{"[vsyscall]", "vsyscall"}, {"[heap]", "heap"}, {"[stack]", "stack"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (path && !strcmp(path, names[i][0]))
			return names[i][1];
	return NULL;
}

static int classify_vma(struct dump_ctx *d, const struct proc_vma *v, Vma *m,
			struct ferry_err *err)
{
	const char *special = special_kind(v->path);
	bool anon_path = !v->path || !strncmp(v->path, "[anon:", 6) ||
			 !strncmp(v->path, "[anon_shmem:", 12);

	m->flags = v->shared ? MAP_SHARED : MAP_PRIVATE;
	/* write-protect registrations are ferry's own when its tracking is armed */
	if ((v->vmflags & VMF_UM) || ((v->vmflags & VMF_UW) && !d->our_wp))
		return refuse_vma(v, "registered with a userfaultfd", err);
	if (v->vmflags & VMF_SS)
		return refuse_vma(v, "a shadow stack", err);
	if (special) {
		m->kind = (char *)special;
		if (!strcmp(special, "heap") || !strcmp(special, "stack"))
			m->flags |= MAP_ANONYMOUS;
		return 0;
	}
	if (v->path && !strncmp(v->path, "anon_inode:", 11))
		return refuse_vma(v, !strcmp(v->path, "anon_inode:[io_uring]") ? "an io_uring ring"
									      : "an anonymous-inode mapping",
				  err);
	if (v->vmflags & (VMF_IO | VMF_PF))
		return refuse_vma(v, "a device (I/O or PFN) mapping", err);
	if (v->path && !strncmp(v->path, "/SYSV", 5))
		return refuse_vma(v, "SysV shared memory", err);
	if (v->path && !strcmp(v->path, "/[aio]"))
		return refuse_vma(v, "an AIO context", err);
	if (anon_path && !v->shared) {
		m->kind = "anon";
		m->flags |= MAP_ANONYMOUS;
		return 0;
	}
	if (v->shared && (v->deleted || anon_path)) {
		bool memfd = v->path && !strncmp(v->path, "/memfd:", 7);
		m->kind = memfd ? "memfd" : "shmem";
		m->has_shmid = true;
		m->shmid = v->ino;
		if (memfd)
			m->name = dz_strdup(d, v->path + 7);
		return 0;
	}
	if (v->deleted)
		return refuse_vma(v, "a private mapping of a deleted file", err);
	m->kind = "file";
	char mf[96];
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", d->pid, (unsigned long)v->start,
		 (unsigned long)v->end);
	int idx = mm_file_index(d, v->path, mf, err);
	if (idx < 0)
		return idx;
	m->has_file = true;
	m->file = idx;
	return 0;
}

static int dump_vdso_syms(struct dump_ctx *d, const struct proc_vma *v, struct ferry_err *err)
{
	size_t len = v->end - v->start;
	_cleanup_free_ uint8_t *buf = malloc(len);
	struct vdso_sym syms[64];
	int n, r;

	if (!buf)
		return ferry_fail(err, ENOMEM, "vdso");
	r = infect_read(&d->ic, v->start, buf, len, err);
	if (r < 0)
		return ferry_wrap(err, "read the vDSO");
	n = vdso_parse_syms(buf, len, syms, ARRAY_SIZE(syms));
	if (n < 0)
		return ferry_refuse(err, EINVAL, "pid %d: cannot parse its vDSO", d->pid);
	for (int i = 0; i < n; i++) {
		VdsoSym *s = dz_alloc(d, sizeof(*s));
		if (!s)
			return ferry_fail(err, ENOMEM, "vdso");
		vdso_sym__init(s);
		s->name = dz_strdup(d, syms[i].name);
		s->offset = syms[i].offset;
		if (dz_push(d, (void ***)&d->mm.vdso_syms, &d->mm.n_vdso_syms, s) < 0)
			return ferry_fail(err, ENOMEM, "vdso");
	}
	d->mm.has_vdso_size = true;
	d->mm.vdso_size = len;
	return 0;
}

static int dump_mm_fields(struct dump_ctx *d, struct ferry_err *err)
{
	uint64_t *auxv = NULL;
	size_t nwords = 0;
	char path[64], exe[PATH_MAX];
	long brk;
	int r;

	d->mm.start_code = d->stat.start_code;
	d->mm.end_code = d->stat.end_code;
	d->mm.start_data = d->stat.start_data;
	d->mm.end_data = d->stat.end_data;
	d->mm.start_brk = d->stat.start_brk;
	d->mm.start_stack = d->stat.start_stack;
	d->mm.arg_start = d->stat.arg_start;
	d->mm.arg_end = d->stat.arg_end;
	d->mm.env_start = d->stat.env_start;
	d->mm.env_end = d->stat.env_end;
	r = infect_syscall(&d->ic, __NR_brk, &brk, 0, 0, 0, 0, 0, 0, err);
	if (r < 0)
		return ferry_wrap(err, "read brk");
	d->mm.brk = brk;
	r = proc_read_auxv(d->pid, &auxv, &nwords, err);
	if (r < 0)
		return r;
	d->mm.auxv = dz_alloc(d, (nwords + 1) * sizeof(uint64_t));
	if (!d->mm.auxv) {
		free(auxv);
		return ferry_fail(err, ENOMEM, "auxv");
	}
	memcpy(d->mm.auxv, auxv, nwords * sizeof(uint64_t));
	d->mm.n_auxv = nwords;
	free(auxv);
	snprintf(path, sizeof(path), "/proc/%d/exe", d->pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return ferry_fail_errno(err, "readlink %s", path);
	exe[n] = '\0';
	if (n > 10 && !strcmp(exe + n - 10, " (deleted)"))
		return ferry_refuse(err, EOPNOTSUPP, "pid %d: its executable %s was deleted", d->pid,
				  exe);
	int idx = mm_file_index(d, exe, path, err);
	if (idx < 0)
		return idx;
	d->mm.has_exe_file = true;
	d->mm.exe_file = idx;
	return 0;
}

int dump_mm(struct dump_ctx *d, struct ferry_err *err)
{
	int r;

	for (size_t i = 0; i < d->nvmas; i++) {
		const struct proc_vma *v = &d->vmas[i];
		Vma *m = dz_alloc(d, sizeof(*m));
		if (!m)
			return ferry_fail(err, ENOMEM, "vmas");
		vma__init(m);
		m->start = v->start;
		m->end = v->end;
		m->prot = v->prot;
		m->pgoff = v->pgoff;
		r = classify_vma(d, v, m, err);
		if (r < 0)
			return r;
		if (v->vmflags & VMF_GD)
			m->flags |= MAP_GROWSDOWN;
		if (v->vmflags & VMF_NR)
			m->flags |= MAP_NORESERVE;
		m->has_madv = true;
		m->madv = madv_bits(v->vmflags);
		if (!strcmp(m->kind, "vdso")) {
			r = dump_vdso_syms(d, v, err);
			if (r < 0)
				return r;
		} else if (!strcmp(m->kind, "vvar")) {
			d->mm.has_vvar_size = true;
			d->mm.vvar_size = v->end - v->start;
		} else if (!strcmp(m->kind, "vvar_vclock")) {
			d->mm.has_vvar_vclock_size = true;
			d->mm.vvar_vclock_size = v->end - v->start;
		}
		if (dz_push(d, (void ***)&d->mm.vmas, &d->mm.n_vmas, m) < 0)
			return ferry_fail(err, ENOMEM, "vmas");
	}
	return dump_mm_fields(d, err);
}
