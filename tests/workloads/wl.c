/*
 * The part of the workload protocol that every workload shares; see wl.h.
 */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t wl_check_requested;
const char *wl_name = "workload";

static int out_fd = -1;
static unsigned failed_checks;
static char first_failure[512];

#define MAX_TEMPS 16
static struct {
	char path[PATH_MAX];
	bool is_dir;
	bool used;
} temps[MAX_TEMPS];
static char tmpdir[PATH_MAX];

#define MAX_FDS 256
static int ready_fds[MAX_FDS];
static int ready_nfds = -1;

static void remove_temps(void)
{
	for (int i = MAX_TEMPS - 1; i >= 0; i--) {
		if (!temps[i].used)
			continue;
		if (temps[i].is_dir)
			rmdir(temps[i].path);
		else
			unlink(temps[i].path);
		temps[i].used = false;
	}
}

static void on_sigusr2(int sig)
{
	wl_check_requested = 1;
}

static void on_fatal(int sig)
{
	int saved = errno;

	remove_temps();
	signal(sig, SIG_DFL);
	raise(sig);
	errno = saved;
}

static void put_line(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s", prefix);

	if (fmt)
		n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (out_fd < 0 || wl_write_all(out_fd, line, n) < 0)
		(void)!write(2, line, n);
}

static void put(const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line(prefix, fmt, ap);
	va_end(ap);
}

int wl_out_fd(void)
{
	return out_fd;
}

void wl_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line("# ", fmt, ap);
	va_end(ap);
}

void wl_start(int argc, char **argv, int min_args, const char *usage)
{
	const char *base = strrchr(argv[0], '/');
	struct sigaction sa;
	const char *env;

	wl_name = base ? base + 1 : argv[0];
	if (argc < 2 + min_args) {
		fprintf(stderr, "usage: %s OUTFILE %s\n", wl_name, usage);
		exit(2);
	}
	do
		out_fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	while (out_fd < 0 && errno == EINTR);
	if (out_fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", wl_name, argv[1], strerror(errno));
		exit(2);
	}

	env = getenv("TMPDIR");
	if (!env || !*env)
		env = ".";
	if (!realpath(env, tmpdir)) {
		wl_setup_fail("temp dir %s: %s", env, strerror(errno));
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigusr2; /* no SA_RESTART: a check request interrupts waits */
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_fatal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	atexit(remove_temps);
}

_Noreturn void wl_setup_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line("FAIL: setup: ", fmt, ap);
	va_end(ap);
	remove_temps();
	exit(1);
}

_Noreturn void wl_unsupported(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line("# unsupported: ", fmt, ap);
	va_end(ap);
	remove_temps();
	exit(WL_EXIT_UNSUPPORTED);
}

/* Open fds, sorted, without the one used to list them; -1 if it cannot list. */
static int list_fds(int *fds, int max)
{
	char buf[4096];
	int dfd, n = 0;
	long got;

	do
		dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (dfd < 0 && errno == EINTR);
	if (dfd < 0)
		return -1;
	while ((got = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			close(dfd);
			return -1;
		}
		for (long off = 0; off < got;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			char *end;
			long fd = strtol(d->d_name, &end, 10);

			off += d->d_reclen;
			if (*end || end == d->d_name || fd == dfd || n >= max)
				continue;
			fds[n++] = (int)fd;
		}
	}
	close(dfd);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];
			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	return n;
}

static void describe_fds(char *buf, size_t len, const int *fds, int n)
{
	size_t used = 0;

	buf[0] = 0;
	for (int i = 0; i < n && used + 12 < len; i++)
		used += snprintf(buf + used, len - used, "%s%d", i ? "," : "", fds[i]);
}

void wl_ready(void)
{
	ready_nfds = list_fds(ready_fds, MAX_FDS);
	put("ready", NULL);
}

void wl_check_fds(void)
{
	int now[MAX_FDS];
	int n = list_fds(now, MAX_FDS);
	char before[300], after[300];

	if (ready_nfds < 0)
		return;
	if (!wl_expect(n >= 0, "cannot list /proc/self/fd: %s", strerror(errno)))
		return;
	if (n == ready_nfds && !memcmp(now, ready_fds, n * sizeof(int)))
		return;
	describe_fds(before, sizeof(before), ready_fds, ready_nfds);
	describe_fds(after, sizeof(after), now, n);
	wl_expect(false, "open fds changed: were [%s], now [%s]", before, after);
}

void wl_wait_for_check(void)
{
	sigset_t usr2, old, wait;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, &old);
	wait = old;
	sigdelset(&wait, SIGUSR2);
	while (!wl_check_requested) {
		sigsuspend(&wait);
		wl_expect(errno == EINTR, "sigsuspend failed with errno %d", errno);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

bool wl_expect(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	va_start(ap, fmt);
	if (!failed_checks++)
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	put_line("# check failed: ", fmt, ap);
	va_end(ap);
	return false;
}

unsigned wl_failures(void)
{
	return failed_checks;
}

_Noreturn void wl_finish(void)
{
	if (!failed_checks) {
		put("PASS", NULL);
		remove_temps();
		exit(0);
	}
	if (failed_checks == 1)
		put("FAIL: ", "%s", first_failure);
	else
		put("FAIL: ", "%s (+%u more)", first_failure, failed_checks - 1);
	remove_temps();
	exit(1);
}

const char *wl_tmpdir(void)
{
	return tmpdir;
}

static int add_temp(const char *path, bool is_dir)
{
	for (int i = 0; i < MAX_TEMPS; i++) {
		if (temps[i].used)
			continue;
		snprintf(temps[i].path, sizeof(temps[i].path), "%s", path);
		temps[i].is_dir = is_dir;
		temps[i].used = true;
		return 0;
	}
	return -1;
}

int wl_temp_file(char *path, size_t len, const char *tag)
{
	int fd;

	snprintf(path, len, "%s/ferry-wl-%s-%d-%s-XXXXXX", tmpdir, wl_name, (int)getpid(), tag);
	fd = mkstemp(path);
	if (fd < 0)
		wl_setup_fail("mkstemp %s: %s", path, strerror(errno));
	if (add_temp(path, false) < 0)
		wl_setup_fail("too many temp files");
	return fd;
}

int wl_temp_dir(char *path, size_t len, const char *tag)
{
	snprintf(path, len, "%s/ferry-wl-%s-%d-%s-XXXXXX", tmpdir, wl_name, (int)getpid(), tag);
	if (!mkdtemp(path))
		wl_setup_fail("mkdtemp %s: %s", path, strerror(errno));
	if (add_temp(path, true) < 0)
		wl_setup_fail("too many temp files");
	return 0;
}

void wl_adopt_temp(const char *path, bool is_dir)
{
	if (add_temp(path, is_dir) < 0)
		wl_setup_fail("too many temp files");
}

void wl_forget_temp(const char *path)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i].used && !strcmp(temps[i].path, path))
			temps[i].used = false;
}

uint64_t wl_word(uint64_t seed, uint64_t i)
{
	/* splitmix64 of (seed, i): every word differs, zero is rare */
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + i + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void wl_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *w = buf;
	size_t n = len / 8;

	for (size_t i = 0; i < n; i++)
		w[i] = wl_word(seed, i);
	for (size_t i = n * 8; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)wl_word(seed, i);
}

ssize_t wl_mismatch(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *w = buf;
	size_t n = len / 8;

	for (size_t i = 0; i < n; i++)
		if (w[i] != wl_word(seed, i))
			return i * 8;
	for (size_t i = n * 8; i < len; i++)
		if (((const uint8_t *)buf)[i] != (uint8_t)wl_word(seed, i))
			return i;
	return -1;
}

ssize_t wl_nonzero(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return i;
	return -1;
}

ssize_t wl_write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return done;
}

ssize_t wl_read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

ssize_t wl_pread_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

ssize_t wl_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return done;
}

/*
 * Calls fn on each line of a /proc file (without the newline) until it returns
 * true; no malloc. Lines longer than the buffer are cut.
 */
static bool for_each_line(const char *path, bool (*fn)(char *line, void *ctx), void *ctx)
{
	char buf[8192];
	size_t have = 0;
	bool eof = false, stop = false;
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return false;
	while (!stop && (!eof || have)) {
		char *nl;

		if (!eof && have < sizeof(buf) - 1) {
			ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				eof = true;
			else
				have += n;
		}
		buf[have] = 0;
		nl = memchr(buf, '\n', have);
		if (!nl && !eof && have < sizeof(buf) - 1)
			continue;
		if (nl)
			*nl = 0;
		stop = fn(buf, ctx);
		if (nl) {
			size_t used = nl + 1 - buf;
			memmove(buf, nl + 1, have - used);
			have -= used;
		} else {
			have = 0;
		}
	}
	close(fd);
	return stop;
}

struct map_query {
	uintptr_t addr;
	uintptr_t start, end;
	char perms[5];
	char name[PATH_MAX];
	const char *flag;
	bool in_target;
	bool found;
};

static bool parse_map_header(const char *line, struct map_query *q)
{
	unsigned long start, end;
	char perms[5];
	int name_at = 0;

	if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &start, &end, perms, &name_at) < 3)
		return false;
	q->in_target = q->addr >= start && q->addr < end;
	if (!q->in_target)
		return true;
	q->start = start;
	q->end = end;
	memcpy(q->perms, perms, 5);
	snprintf(q->name, sizeof(q->name), "%s", name_at ? line + name_at : "");
	return true;
}

static bool map_line(char *line, void *ctx)
{
	struct map_query *q = ctx;

	if (!parse_map_header(line, q) || !q->in_target)
		return false;
	q->found = true;
	return true;
}

bool wl_mapping(const void *addr, uintptr_t *start, uintptr_t *end, char perms[5], char *name,
		size_t name_len)
{
	static struct map_query q; /* big; keeps the caller's stack small */

	memset(&q, 0, sizeof(q));
	q.addr = (uintptr_t)addr;
	if (!for_each_line("/proc/self/maps", map_line, &q) || !q.found)
		return false;
	if (start)
		*start = q.start;
	if (end)
		*end = q.end;
	if (perms)
		memcpy(perms, q.perms, 5);
	if (name)
		snprintf(name, name_len, "%s", q.name);
	return true;
}

bool wl_range_has_perms(const void *addr, size_t len, const char *perms)
{
	uintptr_t at = (uintptr_t)addr, end = at + len;

	while (at < end) {
		uintptr_t s, e;
		char p[5];

		if (!wl_mapping((void *)at, &s, &e, p, NULL, 0) || strcmp(p, perms))
			return false;
		at = e;
	}
	return true;
}

static bool smaps_line(char *line, void *ctx)
{
	struct map_query *q = ctx;

	if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
		parse_map_header(line, q);
		return false;
	}
	if (!q->in_target || strncmp(line, "VmFlags:", 8))
		return false;
	for (char *tok = strtok(line + 8, " "); tok; tok = strtok(NULL, " "))
		if (!strcmp(tok, q->flag))
			q->found = true;
	return true;
}

bool wl_vmflag(const void *addr, const char *flag)
{
	static struct map_query q;

	memset(&q, 0, sizeof(q));
	q.addr = (uintptr_t)addr;
	q.flag = flag;
	for_each_line("/proc/self/smaps", smaps_line, &q);
	return q.found;
}

struct status_query {
	const char *field;
	size_t field_len;
	char *value;
	size_t len;
	bool found;
};

static bool status_line(char *line, void *ctx)
{
	struct status_query *q = ctx;
	char *v, *end;

	if (strncmp(line, q->field, q->field_len) || line[q->field_len] != ':')
		return false;
	v = line + q->field_len + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
	snprintf(q->value, q->len, "%s", v);
	q->found = true;
	return true;
}

bool wl_status_field(const char *field, char *value, size_t len)
{
	struct status_query q = {field, strlen(field), value, len, false};

	for_each_line("/proc/self/status", status_line, &q);
	return q.found;
}

ssize_t wl_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	n = wl_read_all(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

uint64_t wl_now_ns(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

size_t wl_page_size(void)
{
	static size_t page;

	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return page;
}

volatile sig_atomic_t wl_usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	wl_usr1_count++;
}

void wl_catch_usr1(sigset_t *wait)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, wait);
	sigdelset(wait, SIGUSR1);
	sigdelset(wait, SIGUSR2);
}
