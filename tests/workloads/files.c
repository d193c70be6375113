/*
 * files: a file table with one of each kind of open file.
 *
 *   files OUTFILE
 *
 *   ro        the data file (8192 bytes of pattern DATA), read-only, offset 1234
 *   append    a log file, O_WRONLY|O_APPEND, 3 lines written
 *   cloexec   the data file with FD_CLOEXEC; nocloexec: the same without
 *   dir       the temp directory, O_DIRECTORY
 *   null      /dev/null, O_WRONLY; zero: /dev/zero, O_RDONLY|O_NONBLOCK
 *   unlinked  a 3000-byte file (pattern GONE), offset 500, unlinked while open
 *   pipe      both ends of a pipe holding 5000 bytes (pattern PIPE); the write
 *             end is O_NONBLOCK
 *   shared_a, shared_b  one open file description (dup) of the shared file, at
 *             offset 300; shared_c: the same file opened again, offset 4000
 *   fd 100    the data file again, offset 77
 *
 * At setup every fd's flags (F_GETFL, F_GETFD), identity (dev, inode, rdev,
 * mode) and offset are recorded; on SIGUSR2 they must be the same (except
 * the inode of the pipe and of the unlinked file, which a restore has to
 * make anew; the two pipe ends must share theirs), no fd
 * may have come or gone, and each file must still behave: contents at the
 * offset, appends land at the end, the unlinked file is still unlinked, the
 * pipe gives back its 5000 bytes and then nothing, and a read through
 * shared_a moves shared_b but not shared_c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "wl.h"

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

enum seed { DATA = 0xda7a, GONE = 0x90e, PIPE = 0x919e, SHARED = 0x5a7ed, LATER = 0x1a7e };

#define DATA_SIZE 8192
#define GONE_SIZE 3000
#define PIPE_BYTES 5000
#define SHARED_SIZE 8192
#define HIGH_FD 100

enum which {
	FD_RO,
	FD_APPEND,
	FD_CLOEXEC_ON,
	FD_CLOEXEC_OFF,
	FD_DIR,
	FD_NULL,
	FD_ZERO,
	FD_UNLINKED,
	FD_PIPE_R,
	FD_PIPE_W,
	FD_SHARED_A,
	FD_SHARED_B,
	FD_SHARED_C,
	FD_HIGH,
	NFDS
};

static const char *const fd_names[NFDS] = {
    "ro",	"append", "cloexec", "nocloexec", "dir",      "null",	  "zero",
    "unlinked", "pipe-r", "pipe-w",  "shared_a",  "shared_b", "shared_c", "fd100",
};

struct fd_state {
	int fd;
	int fl, fd_flags;
	dev_t dev, rdev;
	ino_t ino;
	mode_t mode;
	off_t offset; /* -1 where it cannot seek */
};

static struct fd_state fds[NFDS];
static char data_path[PATH_MAX], append_path[PATH_MAX], shared_path[PATH_MAX];
static char dir_path[PATH_MAX];
static off_t append_size;

static int open_or_die(const char *path, int flags)
{
	int fd;

	do
		fd = open(path, flags, 0600);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		wl_setup_fail("open %s: %s", path, strerror(errno));
	return fd;
}

static void seek_or_die(int fd, off_t off)
{
	if (lseek(fd, off, SEEK_SET) != off)
		wl_setup_fail("lseek %d to %lld: %s", fd, (long long)off, strerror(errno));
}

/* A temp file holding size bytes of pattern seed. */
static void make_file(char *path, const char *tag, size_t size, uint64_t seed)
{
	static char buf[DATA_SIZE > SHARED_SIZE ? DATA_SIZE : SHARED_SIZE];
	int fd = wl_temp_file(path, PATH_MAX, tag);

	wl_fill(buf, size, seed);
	if (wl_write_all(fd, buf, size) < 0)
		wl_setup_fail("write %s: %s", path, strerror(errno));
	close(fd);
}

static void record(enum which w)
{
	struct fd_state *s = &fds[w];
	struct stat st;

	if (fstat(s->fd, &st))
		wl_setup_fail("fstat %s: %s", fd_names[w], strerror(errno));
	s->fl = fcntl(s->fd, F_GETFL);
	s->fd_flags = fcntl(s->fd, F_GETFD);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->rdev = st.st_rdev;
	s->mode = st.st_mode;
	s->offset = lseek(s->fd, 0, SEEK_CUR);
}

static void setup(void)
{
	static char buf[PIPE_BYTES];
	int pipefd[2], high;
	const char *lines = "first\nsecond\nthird\n";

	make_file(data_path, "data", DATA_SIZE, DATA);
	make_file(shared_path, "shared", SHARED_SIZE, SHARED);

	fds[FD_RO].fd = open_or_die(data_path, O_RDONLY);
	seek_or_die(fds[FD_RO].fd, 1234);

	close(wl_temp_file(append_path, PATH_MAX, "append"));
	fds[FD_APPEND].fd = open_or_die(append_path, O_WRONLY | O_APPEND);
	if (wl_write_all(fds[FD_APPEND].fd, lines, strlen(lines)) < 0)
		wl_setup_fail("write %s: %s", append_path, strerror(errno));
	append_size = strlen(lines);

	fds[FD_CLOEXEC_ON].fd = open_or_die(data_path, O_RDONLY | O_CLOEXEC);
	fds[FD_CLOEXEC_OFF].fd = open_or_die(data_path, O_RDONLY);

	wl_temp_dir(dir_path, sizeof(dir_path), "dir");
	fds[FD_DIR].fd = open_or_die(dir_path, O_RDONLY | O_DIRECTORY);
	fds[FD_NULL].fd = open_or_die("/dev/null", O_WRONLY);
	fds[FD_ZERO].fd = open_or_die("/dev/zero", O_RDONLY | O_NONBLOCK);

	{
		char gone_path[PATH_MAX];
		int fd = wl_temp_file(gone_path, sizeof(gone_path), "unlinked");

		wl_fill(buf, GONE_SIZE, GONE);
		if (wl_write_all(fd, buf, GONE_SIZE) < 0)
			wl_setup_fail("write %s: %s", gone_path, strerror(errno));
		seek_or_die(fd, 500);
		if (unlink(gone_path))
			wl_setup_fail("unlink %s: %s", gone_path, strerror(errno));
		wl_forget_temp(gone_path);
		fds[FD_UNLINKED].fd = fd;
	}

	if (pipe(pipefd))
		wl_setup_fail("pipe: %s", strerror(errno));
	fds[FD_PIPE_R].fd = pipefd[0];
	fds[FD_PIPE_W].fd = pipefd[1];
	wl_fill(buf, PIPE_BYTES, PIPE);
	if (wl_write_all(pipefd[1], buf, PIPE_BYTES) < 0)
		wl_setup_fail("write pipe: %s", strerror(errno));
	if (fcntl(pipefd[1], F_SETFL, O_NONBLOCK))
		wl_setup_fail("F_SETFL: %s", strerror(errno));

	fds[FD_SHARED_A].fd = open_or_die(shared_path, O_RDWR);
	seek_or_die(fds[FD_SHARED_A].fd, 300);
	fds[FD_SHARED_B].fd = dup(fds[FD_SHARED_A].fd);
	if (fds[FD_SHARED_B].fd < 0)
		wl_setup_fail("dup: %s", strerror(errno));
	fds[FD_SHARED_C].fd = open_or_die(shared_path, O_RDONLY);
	seek_or_die(fds[FD_SHARED_C].fd, 4000);

	high = open_or_die(data_path, O_RDONLY);
	seek_or_die(high, 77);
	if (dup2(high, HIGH_FD) != HIGH_FD)
		wl_setup_fail("dup2 to %d: %s", HIGH_FD, strerror(errno));
	close(high);
	fds[FD_HIGH].fd = HIGH_FD;

	for (int w = 0; w < NFDS; w++)
		record(w);
}

static bool has_identity(enum which w)
{
	return w != FD_UNLINKED && w != FD_PIPE_R && w != FD_PIPE_W;
}

static bool check_recorded(enum which w)
{
	struct fd_state now = {.fd = fds[w].fd}, *was = &fds[w];
	const char *name = fd_names[w];
	struct stat st;

	if (!wl_expect(fstat(now.fd, &st) == 0, "%s: fd %d: %s", name, now.fd, strerror(errno)))
		return false;
	now.fl = fcntl(now.fd, F_GETFL);
	now.fd_flags = fcntl(now.fd, F_GETFD);
	now.offset = lseek(now.fd, 0, SEEK_CUR);
	/* A restored pipe is a new pipe, a deleted file may come back as a new
	 * (still deleted) file: for those only what they hold counts. */
	return wl_expect(!has_identity(w) || (st.st_dev == was->dev && st.st_ino == was->ino),
			 "%s: fd %d is another file (dev %lx ino %lu, was dev %lx ino %lu)", name,
			 now.fd, (unsigned long)st.st_dev, (unsigned long)st.st_ino,
			 (unsigned long)was->dev, (unsigned long)was->ino) &&
	       wl_expect(st.st_mode == was->mode && st.st_rdev == was->rdev,
			 "%s: mode %o rdev %lx, was %o %lx", name, st.st_mode,
			 (unsigned long)st.st_rdev, was->mode, (unsigned long)was->rdev) &&
	       wl_expect(now.fl == was->fl, "%s: F_GETFL is %#o, was %#o", name, now.fl, was->fl) &&
	       wl_expect(now.fd_flags == was->fd_flags, "%s: F_GETFD is %#x, was %#x", name,
			 now.fd_flags, was->fd_flags) &&
	       wl_expect(now.offset == was->offset, "%s: offset is %lld, was %lld", name,
			 (long long)now.offset, (long long)was->offset);
}

/* The next len bytes of fd are bytes [from, from+len) of pattern seed. */
static void expect_read(enum which w, size_t len, size_t from, uint64_t seed)
{
	static char want[DATA_SIZE], got[DATA_SIZE];
	ssize_t n = wl_read_all(fds[w].fd, got, len);

	wl_fill(want, sizeof(want), seed); /* all sizes used are multiples of 8 */
	if (!wl_expect(n == (ssize_t)len, "%s: read %zu bytes gave %zd (%s)", fd_names[w], len, n,
		       n < 0 ? strerror(errno) : "short"))
		return;
	wl_expect(!memcmp(got, want + from, len), "%s: bytes at offset %zu differ", fd_names[w],
		  from);
}

static void check_files(void)
{
	struct stat st;
	char link[PATH_MAX + 32], path[64];
	ssize_t n;

	expect_read(FD_RO, 1000, 1234, DATA);
	expect_read(FD_CLOEXEC_ON, 100, 0, DATA);
	expect_read(FD_CLOEXEC_OFF, 100, 0, DATA);
	expect_read(FD_HIGH, 1000, 77, DATA);
	wl_expect(fds[FD_CLOEXEC_ON].fd_flags & FD_CLOEXEC, "cloexec fd lost FD_CLOEXEC");
	wl_expect(!(fds[FD_CLOEXEC_OFF].fd_flags & FD_CLOEXEC), "nocloexec fd has FD_CLOEXEC");

	wl_expect(fstat(fds[FD_APPEND].fd, &st) == 0 && st.st_size == append_size,
		  "append file is %lld bytes, expected %lld", (long long)st.st_size,
		  (long long)append_size);
	lseek(fds[FD_APPEND].fd, 0, SEEK_SET);
	if (wl_expect(wl_write_all(fds[FD_APPEND].fd, "fourth\n", 7) == 7, "append: write: %s",
		      strerror(errno)))
		wl_expect(fstat(fds[FD_APPEND].fd, &st) == 0 && st.st_size == append_size + 7,
			  "a write to the O_APPEND fd did not land at the end (size %lld)",
			  (long long)st.st_size);

	{
		int fd = openat(fds[FD_DIR].fd, "probe", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (wl_expect(fd >= 0, "openat in the directory fd: %s", strerror(errno))) {
			close(fd);
			wl_expect(access(strcat(strcpy(link, dir_path), "/probe"), F_OK) == 0,
				  "a file made through the directory fd is not in %s", dir_path);
			unlinkat(fds[FD_DIR].fd, "probe", 0);
		}
	}

	wl_expect(S_ISCHR(fds[FD_NULL].mode) && fds[FD_NULL].rdev == makedev(1, 3),
		  "null is not /dev/null");
	wl_expect(write(fds[FD_NULL].fd, "x", 1) == 1, "write /dev/null: %s", strerror(errno));
	wl_expect(S_ISCHR(fds[FD_ZERO].mode) && fds[FD_ZERO].rdev == makedev(1, 5),
		  "zero is not /dev/zero");
	{
		char z[64];

		memset(z, 0x55, sizeof(z));
		wl_expect(wl_read_all(fds[FD_ZERO].fd, z, sizeof(z)) == sizeof(z) &&
			      wl_nonzero(z, sizeof(z)) < 0,
			  "/dev/zero did not read zeros");
	}

	wl_expect(fstat(fds[FD_UNLINKED].fd, &st) == 0 && st.st_nlink == 0 &&
		      st.st_size == GONE_SIZE,
		  "the unlinked file has %lu links and %lld bytes", (unsigned long)st.st_nlink,
		  (long long)st.st_size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[FD_UNLINKED].fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	wl_expect(n > 10 && !strcmp(link + n - 10, " (deleted)"),
		  "the unlinked file's link is '%s'", link);
	expect_read(FD_UNLINKED, GONE_SIZE - 500, 500, GONE);
}

static void check_pipe(void)
{
	struct pollfd pfd = {fds[FD_PIPE_R].fd, POLLIN, 0};
	struct stat r, w;
	char c = 0;

	wl_expect(fstat(fds[FD_PIPE_R].fd, &r) == 0 && fstat(fds[FD_PIPE_W].fd, &w) == 0 &&
		      r.st_ino == w.st_ino && S_ISFIFO(r.st_mode),
		  "the pipe's ends are not one pipe");
	expect_read(FD_PIPE_R, PIPE_BYTES, 0, PIPE);
	wl_expect(poll(&pfd, 1, 0) == 0, "the pipe holds more than %d bytes", PIPE_BYTES);
	if (wl_expect(write(fds[FD_PIPE_W].fd, "!", 1) == 1, "write pipe: %s", strerror(errno)))
		wl_expect(wl_read_all(fds[FD_PIPE_R].fd, &c, 1) == 1 && c == '!',
			  "the pipe does not carry new data");
}

static off_t offset_of(enum which w)
{
	return lseek(fds[w].fd, 0, SEEK_CUR);
}

static void check_shared(void)
{
	pid_t me = getpid();
	long same, other;

	expect_read(FD_SHARED_A, 100, 300, SHARED);
	wl_expect(offset_of(FD_SHARED_B) == 400,
		  "a read through shared_a moved shared_b to %lld, not 400",
		  (long long)offset_of(FD_SHARED_B));
	wl_expect(offset_of(FD_SHARED_C) == 4000, "shared_c moved to %lld",
		  (long long)offset_of(FD_SHARED_C));
	expect_read(FD_SHARED_B, 100, 400, SHARED);
	wl_expect(offset_of(FD_SHARED_A) == 500, "a read through shared_b moved shared_a to %lld",
		  (long long)offset_of(FD_SHARED_A));
	expect_read(FD_SHARED_C, 100, 4000, SHARED);
	wl_expect(offset_of(FD_SHARED_A) == 500, "a read through shared_c moved shared_a");

	same = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[FD_SHARED_A].fd, fds[FD_SHARED_B].fd);
	other = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[FD_SHARED_A].fd, fds[FD_SHARED_C].fd);
	if (same < 0 && errno == ENOSYS)
		return;
	wl_expect(same == 0, "kcmp: shared_a and shared_b are not one open file (%ld)", same);
	wl_expect(other > 0, "kcmp: shared_a and shared_c are one open file (%ld)", other);
}

int main(int argc, char **argv)
{
	wl_start(argc, argv, 0, "");
	setup();
	wl_ready();

	wl_wait_for_check();

	wl_check_fds();
	for (int w = 0; w < NFDS; w++)
		check_recorded(w);
	check_files();
	check_pipe();
	check_shared();
	wl_finish();
}
