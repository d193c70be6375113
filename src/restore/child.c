/*
 * The new process's first steps, in plain C, before the restorer takes over:
 * forget ferry's signal handlers (its rseq registration the restorer drops), open every file the
 * restorer will need at helper fds above the image's fds, build the image's
 * fd table, cwd, root, umask, personality, comm and session, then report on
 * the ready pipe ("K", or "E" and a message) and wait to be seized.
 *
 * This runs in a fork of the restorer: it reads the parsed images from its
 * copy of the restorer's memory and reports errors only through the pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"
#include "restore/internal.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

struct child {
	struct restore_ctx *r;
	char msg[1024];
};

static int cfail(struct child *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cfail(struct child *c, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	if (e && n >= 0 && (size_t)n < sizeof(c->msg))
		snprintf(c->msg + n, sizeof(c->msg) - n, ": %s", strerror(e));
	return -1;
}

static int move_fd(struct child *c, int fd, int at)
{
	if (fd == at)
		return 0;
	if (dup2(fd, at) < 0)
		return cfail(c, "dup fd %d to %d", fd, at);
	close(fd);
	return 0;
}

/* Open path and put it at fd number `at`. */
static int open_at(struct child *c, const char *path, int flags, int at)
{
	int fd = open(path, flags, 0600);

	if (fd < 0)
		return cfail(c, "open %s", path);
	return move_fd(c, fd, at);
}

static void forget_ferry_state(void)
{
	uint64_t all = ~0ULL;
	struct {
		uint64_t handler, flags, restorer, mask;
	} dfl = {0, 0, 0, 0};

	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
}

static int open_helpers(struct child *c)
{
	struct restore_ctx *r = c->r;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (move_fd(c, r->ready[1], r->helper_base) < 0)
		return -1;
	r->ready[1] = r->helper_base;
	if (r->tty_fd >= 0 && move_fd(c, r->tty_fd, r->helper_base + 1) < 0)
		return -1;
	for (int i = 0; i < r->pr.nr_layers; i++)
		if (open_at(c, r->pr.layers[i].path, O_RDONLY, helper_layer_fd(r, i)) < 0)
			return -1;
	/* read-write where a shared writable mapping needs it (no malloc here: a bit set) */
	uint64_t rw[(r->mm->n_files + 63) / 64 + 1];
	memset(rw, 0, sizeof(rw));
	for (size_t k = 0; k < r->mm->n_vmas; k++) {
		const Vma *v = r->mm->vmas[k];
		if (v->has_file && (v->flags & MAP_SHARED) && (v->prot & PROT_WRITE))
			rw[v->file / 64] |= 1ULL << (v->file % 64);
	}
	for (size_t j = 0; j < r->mm->n_files; j++) {
		int flags = rw[j / 64] & (1ULL << (j % 64)) ? O_RDWR : O_RDONLY;
		if (open_at(c, r->mm->files[j]->path, flags, helper_file_fd(r, j)) < 0)
			return -1;
	}
	return 0;
}

static int open_unlinked(struct child *c, const OpenFile *f, int at)
{
	char dir[PATH_MAX], proc[64];
	int fd;

	snprintf(dir, sizeof(dir), "%s", f->path);
	fd = open(dirname(dir), O_TMPFILE | O_RDWR, f->has_mode ? (f->mode & 07777) : 0600);
	if (fd < 0)
		fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (fd < 0)
		return cfail(c, "recreate unlinked file %s", f->path);
	if (write_all(fd, f->contents.data, f->contents.len) < 0)
		return cfail(c, "write unlinked file %s", f->path);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int r = open_at(c, proc, f->flags & ~(O_CREAT | O_EXCL | O_TRUNC), at);
	close(fd);
	return r;
}

/* Open file description i at fd `at`. Pipes are made when their first end comes. */
static int open_ofd(struct child *c, size_t i, int at, int ofd_base)
{
	struct restore_ctx *r = c->r;
	const OpenFile *f = r->fds->ofds[i];
	int flags = f->flags & ~(O_CREAT | O_EXCL | O_TRUNC);

	if (!strcmp(f->kind, "pipe")) {
		if (fcntl(at, F_GETFD) >= 0)
			return 0; /* made with its other end */
		int p[2];
		if (pipe2(p, 0) < 0)
			return cfail(c, "pipe");
		size_t other = i;
		for (size_t j = 0; j < r->fds->n_ofds; j++)
			if (j != i && !strcmp(r->fds->ofds[j]->kind, "pipe") &&
			    r->fds->ofds[j]->pipe_id == f->pipe_id)
				other = j;
		bool i_reads = (f->flags & O_ACCMODE) == O_RDONLY;
		const OpenFile *rd = i_reads ? f : r->fds->ofds[other];
		if (rd->has_pipe_size)
			fcntl(p[1], F_SETPIPE_SZ, rd->pipe_size);
		if (rd->has_pipe_data && write_all(p[1], rd->pipe_data.data, rd->pipe_data.len) < 0)
			return cfail(c, "refill pipe %lu", (unsigned long)f->pipe_id);
		int my_end = i_reads ? p[0] : p[1], their_end = i_reads ? p[1] : p[0];
		if (move_fd(c, my_end, at) < 0 ||
		    move_fd(c, their_end, other == i ? ofd_base + (int)r->fds->n_ofds : ofd_base + (int)other) < 0)
			return -1;
		fcntl(at, F_SETFL, flags);
		if (other != i)
			fcntl(ofd_base + (int)other, F_SETFL, r->fds->ofds[other]->flags);
		return 0;
	}
	if (!strcmp(f->kind, "tty")) {
		if (dup2(r->helper_base + 1, at) < 0)
			return cfail(c, "give fd the terminal");
		return 0;
	}
	if (f->has_unlinked && f->unlinked) {
		if (open_unlinked(c, f, at) < 0)
			return -1;
	} else if (open_at(c, f->path, flags | O_NOCTTY, at) < 0) {
		return -1;
	}
	if (f->has_pos && !strcmp(f->kind, "reg") && lseek(at, f->pos, SEEK_SET) < 0)
		return cfail(c, "seek %s to %lu", f->path, (unsigned long)f->pos);
	if (f->has_pos && !strcmp(f->kind, "dir") && f->pos && lseek(at, f->pos, SEEK_SET) < 0)
		return cfail(c, "seek directory %s", f->path);
	return 0;
}

static int build_fd_table(struct child *c)
{
	struct restore_ctx *r = c->r;
	int ofd_base = helper_file_fd(r, r->mm->n_files);

	for (size_t i = 0; i < r->fds->n_ofds; i++)
		if (open_ofd(c, i, ofd_base + i, ofd_base) < 0)
			return -1;
	syscall(SYS_close_range, 0, r->helper_base - 1, 0);
	for (size_t i = 0; i < r->fds->n_fds; i++) {
		const Fd *fd = r->fds->fds[i];
		if (dup2(ofd_base + fd->ofd, fd->fd) < 0)
			return cfail(c, "set up fd %d", fd->fd);
		if (fd->cloexec && fcntl(fd->fd, F_SETFD, FD_CLOEXEC) < 0)
			return cfail(c, "set FD_CLOEXEC on fd %d", fd->fd);
	}
	syscall(SYS_close_range, ofd_base, ~0U, 0);
	return 0;
}

static int set_identity(struct child *c)
{
	struct restore_ctx *r = c->r;
	const TaskCore *t = r->task;

	if (strcmp(t->root, "/") && chroot(t->root) < 0)
		return cfail(c, "chroot %s", t->root);
	if (chdir(t->cwd) < 0)
		return cfail(c, "chdir %s", t->cwd);
	umask(t->umask);
	if (personality(t->personality) < 0)
		return cfail(c, "personality %#x", t->personality);
	prctl(PR_SET_NAME, r->core->comm ? r->core->comm : t->comm, 0, 0, 0);
	if (r->pe->sid == r->pe->pid) {
		if (setsid() < 0 && getsid(0) != getpid())
			return cfail(c, "setsid");
	} else if (r->pe->pgid == r->pe->pid && setpgid(0, 0) < 0) {
		return cfail(c, "setpgid");
	}
	return 0;
}

int restore_child_main(void *arg)
{
	struct child c = {.r = arg};
	int ok;

	forget_ferry_state();
	ok = open_helpers(&c) == 0 && build_fd_table(&c) == 0 && set_identity(&c) == 0;
	if (!ok) {
		char buf[sizeof(c.msg) + 1];
		int n = snprintf(buf, sizeof(buf), "E%s", c.msg);
		write_all(c.r->ready[1], buf, n);
		_exit(1);
	}
	write_all(c.r->ready[1], "K", 1);
	for (;;)
		syscall(SYS_pause);
}
