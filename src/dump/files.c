/*
 * The fd table. Each fd points to an open file description (OpenFile); fds
 * that share one description (dup, fork) point to the same OpenFile, found
 * with kcmp(KCMP_FILE). Pipe data is copied with tee(), so the pipe keeps it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "dump/internal.h"

#define MAX_UNLINKED_SIZE (64UL << 20)

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_fds(pid_t pid, int **out, size_t *n, struct ferry_err *err)
{
	char path[64];
	size_t cap = 64;
	int *fds = malloc(cap * sizeof(int));
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_closedir_ DIR *dir = opendir(path);
	if (!dir || !fds) {
		free(fds);
		return ferry_fail_errno(err, "open %s", path);
	}
	*n = 0;
	while ((de = readdir(dir))) {
		long fd;
		if (parse_int(de->d_name, 0, INT_MAX, &fd) < 0)
			continue;
		if (*n == cap) {
			int *nf = realloc(fds, cap * 2 * sizeof(int));
			if (!nf) {
				free(fds);
				return ferry_fail(err, ENOMEM, "fd list");
			}
			fds = nf;
			cap *= 2;
		}
		fds[(*n)++] = fd;
	}
	qsort(fds, *n, sizeof(int), cmp_int);
	*out = fds;
	return 0;
}

static int refuse_fd(int fd, const char *what, const char *link, struct ferry_err *err)
{
	return ferry_refuse(err, EOPNOTSUPP, "fd %d is %s (%s): not supported yet", fd, what, link);
}

static const char *anon_kind(const char *link)
{
	static const char *names[][2] = {
		{"anon_inode:[eventfd]", "an eventfd"},
		{"anon_inode:[eventpoll]", "an epoll instance"},
		{"anon_inode:[signalfd]", "a signalfd"},
		{"anon_inode:[timerfd]", "a timerfd"},
		{"anon_inode:[io_uring]", "an io_uring instance"},
		{"anon_inode:[userfaultfd]", "a userfaultfd"},
		{"anon_inode:inotify", "an inotify instance"},
		{"anon_inode:[fanotify]", "a fanotify instance"},
		{"anon_inode:[pidfd]", "a pidfd"},
		{"anon_inode:[perf_event]", "a perf event"},
		{"anon_inode:bpf", "a BPF object"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strncmp(link, names[i][0], strlen(names[i][0])))
			return names[i][1];
	if (!strncmp(link, "socket:", 7))
		return "a socket";
	if (!strncmp(link, "anon_inode:", 11))
		return "an anonymous inode";
	return NULL;
}

/* Copy what is buffered in a pipe without taking it out. */
static int peek_pipe(struct dump_ctx *d, int fd, OpenFile *f, struct ferry_err *err)
{
	char path[64];
	int tmp[2], r = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, fd);
	_cleanup_close_ int pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pfd < 0)
		return ferry_fail_errno(err, "open %s", path);
	int size = fcntl(pfd, F_GETPIPE_SZ);
	if (size < 0)
		return ferry_fail_errno(err, "pipe size of fd %d", fd);
	f->has_pipe_size = true;
	f->pipe_size = size;
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0)
		return ferry_fail_errno(err, "pipe");
	if (fcntl(tmp[1], F_SETPIPE_SZ, size) < size) {
		r = ferry_fail_errno(err, "grow a pipe to %d bytes to copy fd %d", size, fd);
		goto out;
	}
	ssize_t n = tee(pfd, tmp[1], size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN) {
		r = ferry_fail_errno(err, "copy the data of pipe fd %d", fd);
		goto out;
	}
	if (n > 0) {
		uint8_t *buf = dz_alloc(d, n);
		if (!buf) {
			r = ferry_fail(err, ENOMEM, "pipe data");
			goto out;
		}
		r = read_all(tmp[0], buf, n);
		if (r < 0) {
			r = ferry_fail(err, -r, "read the data of pipe fd %d", fd);
			goto out;
		}
		f->has_pipe_data = true;
		f->pipe_data.data = buf;
		f->pipe_data.len = n;
	}
out:
	close(tmp[0]);
	close(tmp[1]);
	return r;
}

static int save_unlinked(struct dump_ctx *d, int fd, OpenFile *f, struct ferry_err *err)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, fd);
	_cleanup_close_ int rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0 || fstat(rfd, &st) < 0)
		return ferry_fail_errno(err, "open unlinked file of fd %d", fd);
	if ((uint64_t)st.st_size > MAX_UNLINKED_SIZE)
		return ferry_fail(err, EFBIG, "fd %d: unlinked file of %lld bytes (limit %lu)", fd,
				  (long long)st.st_size, MAX_UNLINKED_SIZE);
	uint8_t *buf = dz_alloc(d, st.st_size + 1);
	if (!buf)
		return ferry_fail(err, ENOMEM, "unlinked file");
	int r = pread_all(rfd, buf, st.st_size, 0);
	if (r < 0)
		return ferry_fail(err, -r, "read unlinked file of fd %d", fd);
	f->has_contents = true;
	f->contents.data = buf;
	f->contents.len = st.st_size;
	f->has_unlinked = true;
	f->unlinked = true;
	f->has_mode = true;
	f->mode = st.st_mode;
	return 0;
}

static bool is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);

	return S_ISCHR(st->st_mode) && (maj == 136 || maj == 4 || maj == 5);
}

static int describe_fd(struct dump_ctx *d, int fd, const char *link, const struct proc_fdinfo *fi,
		       OpenFile *f, struct ferry_err *err)
{
	char path[64];
	struct stat st;
	const char *anon = anon_kind(link);

	f->flags = fi->flags & ~O_CLOEXEC;
	f->has_pos = true;
	f->pos = fi->pos;
	if (anon)
		return refuse_fd(fd, anon, link, err);
	if (!strncmp(link, "pipe:", 5)) {
		f->kind = "pipe";
		f->has_pipe_id = true;
		f->pipe_id = fi->ino;
		return (f->flags & O_ACCMODE) == O_RDONLY ? peek_pipe(d, fd, f, err) : 0;
	}
	if (link[0] != '/')
		return refuse_fd(fd, "of an unknown kind", link, err);
	if (!strncmp(link, "/memfd:", 7))
		return refuse_fd(fd, "a memfd", link, err);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, fd);
	if (stat(path, &st) < 0)
		return ferry_fail_errno(err, "stat fd %d (%s)", fd, link);
	f->has_mode = true;
	f->mode = st.st_mode;
	size_t len = strlen(link);
	bool deleted = len > 10 && !strcmp(link + len - 10, " (deleted)");
	f->path = dz_strdup(d, link);
	if (deleted)
		f->path[len - 10] = '\0';
	if (S_ISSOCK(st.st_mode))
		return refuse_fd(fd, "a socket", link, err);
	if (S_ISFIFO(st.st_mode))
		return refuse_fd(fd, "a named FIFO", link, err);
	if (S_ISBLK(st.st_mode))
		return refuse_fd(fd, "a block device", link, err);
	if (S_ISCHR(st.st_mode)) {
		f->has_rdev = true;
		f->rdev = st.st_rdev;
		if (is_tty(&st)) {
			if (!d->o->shell_job)
				return ferry_refuse(err, EOPNOTSUPP,
						  "fd %d is a terminal (%s): dump with --shell-job",
						  fd, link);
			f->kind = "tty";
			return 0;
		}
		f->kind = "chr";
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		f->kind = "dir";
		return 0;
	}
	f->kind = "reg";
	if (deleted)
		return save_unlinked(d, fd, f, err);
	_cleanup_close_ int rfd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	return dump_file_id(d, f->path, rfd, &f->id, err);
}

static int same_description(pid_t pid, int a, int b)
{
	return syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

int dump_fds(struct dump_ctx *d, struct ferry_err *err)
{
	_cleanup_free_ int *fds = NULL;
	_cleanup_free_ int *first_fd = NULL; /* an fd of each OpenFile, for kcmp */
	size_t n = 0;
	int r;

	r = list_fds(d->pid, &fds, &n, err);
	if (r < 0)
		return r;
	first_fd = calloc(n + 1, sizeof(int));
	if (!first_fd)
		return ferry_fail(err, ENOMEM, "fds");
	for (size_t i = 0; i < n; i++) {
		char path[64], link[PATH_MAX];
		struct proc_fdinfo fi;
		int fd = fds[i];

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, fd);
		ssize_t ln = readlink(path, link, sizeof(link) - 1);
		if (ln < 0)
			return ferry_fail_errno(err, "readlink %s", path);
		link[ln] = '\0';
		r = proc_parse_fdinfo(d->pid, fd, &fi, err);
		if (r < 0)
			return r;
		if (fi.has_lock)
			return ferry_refuse(err, EOPNOTSUPP,
					  "fd %d (%s) holds a file lock: not supported yet", fd, link);
		Fd *m = dz_alloc(d, sizeof(*m));
		if (!m)
			return ferry_fail(err, ENOMEM, "fds");
		fd__init(m);
		m->fd = fd;
		m->cloexec = !!(fi.flags & O_CLOEXEC);
		size_t j;
		for (j = 0; j < d->fds.n_ofds; j++)
			if (same_description(d->pid, first_fd[j], fd))
				break;
		if (j == d->fds.n_ofds) {
			OpenFile *f = dz_alloc(d, sizeof(*f));
			if (!f)
				return ferry_fail(err, ENOMEM, "fds");
			open_file__init(f);
			r = describe_fd(d, fd, link, &fi, f, err);
			if (r < 0)
				return r;
			first_fd[j] = fd;
			if (dz_push(d, (void ***)&d->fds.ofds, &d->fds.n_ofds, f) < 0)
				return ferry_fail(err, ENOMEM, "fds");
		}
		m->ofd = j;
		if (dz_push(d, (void ***)&d->fds.fds, &d->fds.n_fds, m) < 0)
			return ferry_fail(err, ENOMEM, "fds");
	}
	/* Both ends of every pipe must be in the process. */
	for (size_t i = 0; i < d->fds.n_ofds; i++) {
		OpenFile *f = d->fds.ofds[i];
		bool other = false;
		if (strcmp(f->kind, "pipe"))
			continue;
		for (size_t j = 0; j < d->fds.n_ofds && !other; j++)
			other = j != i && !strcmp(d->fds.ofds[j]->kind, "pipe") &&
				d->fds.ofds[j]->pipe_id == f->pipe_id &&
				(d->fds.ofds[j]->flags & O_ACCMODE) != (f->flags & O_ACCMODE);
		if (!other) /* first_fd[i]: the lowest fd of that description */
			return ferry_refuse(err, EOPNOTSUPP,
					    "fd %d is a pipe whose other end is outside the process: "
					    "not supported yet",
					    first_fd[i]);
	}
	return 0;
}
