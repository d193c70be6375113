/*
 * Tests of src/core/nsinit: a ferry init as PID 1 of fresh PID, mount and time
 * namespaces, with the child function as PID 2. They need root (namespaces,
 * time offsets) and SKIP without it.
 *
 * The child function reports what it sees over a pipe passed in keep_fds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/nsinit.h"

#define NSEC_PER_SEC 1000000000LL

/* The init a test started, killed by the teardown even when an assertion failed. */
static pid_t spawned_init;

static int kill_spawned_init(void **state)
{
	if (spawned_init > 0) {
		kill(spawned_init, SIGKILL);
		waitpid(spawned_init, NULL, 0);
	}
	spawned_init = 0;
	return 0;
}

static void skip_unless_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: nsinit needs root (namespaces, time offsets)\n");
		skip();
	}
}

static int64_t clock_ns(clockid_t clk)
{
	struct timespec t;

	clock_gettime(clk, &t);
	return t.tv_sec * NSEC_PER_SEC + t.tv_nsec;
}

static int wait_exit_code(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 1000 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int wait_init_exit_code(pid_t init)
{
	int code = wait_exit_code(init);

	spawned_init = 0;
	return code;
}

static void assert_no_children_left(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* What PID 2 saw, written to the report pipe. */
struct seen {
	int64_t mono_ns, boot_ns;
	pid_t pid, ppid;
	int open_fds;
	char init_comm[16];
	ino_t pid_ns, mnt_ns, time_ns;
};

static int report_fd = -1;

static ino_t ns_inode(const char *name)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static int look_around(void *arg)
{
	struct seen s = {0};
	FILE *f;

	s.mono_ns = clock_ns(CLOCK_MONOTONIC);
	s.boot_ns = clock_ns(CLOCK_BOOTTIME);
	s.pid = getpid();
	s.ppid = getppid();
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			s.open_fds++;
	f = fopen("/proc/1/comm", "r");
	if (f) {
		if (!fgets(s.init_comm, sizeof(s.init_comm), f))
			s.init_comm[0] = '\0';
		s.init_comm[strcspn(s.init_comm, "\n")] = '\0';
		fclose(f);
	}
	s.pid_ns = ns_inode("pid");
	s.mnt_ns = ns_inode("mnt");
	s.time_ns = ns_inode("time");
	if (write(report_fd, &s, sizeof(s)) != sizeof(s))
		return 1;
	pause();
	return 0;
}

/* Spawn look_around with cfg (plus the report pipe) and read what it saw. */
static void spawn_and_look(struct nsinit_cfg *cfg, struct seen *s, pid_t *init, pid_t *child)
{
	struct ferry_err err = {0};
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	report_fd = p[1];
	cfg->keep_fds[cfg->n_keep_fds++] = p[1];
	if (nsinit_spawn(cfg, look_around, NULL, init, child, &err) < 0)
		fail_msg("nsinit_spawn: %s", err.msg);
	spawned_init = *init;
	close(p[1]);
	assert_int_equal(read(p[0], s, sizeof(*s)), sizeof(*s));
	close(p[0]);
}

static void time_offsets_shift_both_clocks_inside(void **state)
{
	struct nsinit_cfg cfg = {.set_time_offsets = true};
	struct ferry_err err = {0};
	int64_t mono, boot, d_mono, d_boot;
	struct seen s;
	pid_t init, child;

	skip_unless_root();
	cfg.monotonic_off_ns = 5000 * NSEC_PER_SEC + 123456789;
	/* negative, keeping the clock positive */
	cfg.boottime_off_ns = -(clock_ns(CLOCK_BOOTTIME) / 2) - 987654321;
	spawn_and_look(&cfg, &s, &init, &child);
	d_mono = s.mono_ns - clock_ns(CLOCK_MONOTONIC);
	d_boot = s.boot_ns - clock_ns(CLOCK_BOOTTIME);
	/* PID 2 read its clocks a little before us */
	assert_true(d_mono <= cfg.monotonic_off_ns);
	assert_true(d_mono > cfg.monotonic_off_ns - NSEC_PER_SEC);
	assert_true(d_boot <= cfg.boottime_off_ns);
	assert_true(d_boot > cfg.boottime_off_ns - NSEC_PER_SEC);

	assert_int_equal(nsinit_read_time_offsets(child, &mono, &boot, &err), 0);
	assert_int_equal(mono, cfg.monotonic_off_ns);
	assert_int_equal(boot, cfg.boottime_off_ns);
	assert_int_equal(nsinit_read_time_offsets(init, &mono, &boot, &err), 0);
	assert_int_equal(mono, cfg.monotonic_off_ns);

	kill(init, SIGKILL);
	wait_init_exit_code(init);
}

static void child_is_pid_2_under_ferry_init_in_new_namespaces(void **state)
{
	struct nsinit_cfg cfg = {0};
	struct seen s;
	pid_t init, child;
	int64_t mono, boot;
	struct ferry_err err = {0};

	skip_unless_root();
	spawn_and_look(&cfg, &s, &init, &child);
	assert_int_equal(s.pid, 2);
	assert_int_equal(s.ppid, 1);
	/* /proc is the namespace's own: its PID 1 is the init */
	assert_string_equal(s.init_comm, "ferry-init");
	assert_int_not_equal(s.pid_ns, ns_inode("pid"));
	assert_int_not_equal(s.mnt_ns, ns_inode("mnt"));
	assert_int_not_equal(s.time_ns, ns_inode("time"));
	assert_true(child != init && child > 0 && init > 0);
	/* no offsets asked: a fresh time namespace with zero offsets */
	assert_int_equal(nsinit_read_time_offsets(child, &mono, &boot, &err), 0);
	assert_int_equal(mono, 0);
	assert_int_equal(boot, 0);

	kill(init, SIGKILL);
	wait_init_exit_code(init);
}

static int count_fds_of(pid_t pid)
{
	char path[64], cmd[128];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	snprintf(cmd, sizeof(cmd), "ls %s | wc -l", path);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

static void init_keeps_only_stdio_and_child_gets_keep_fds(void **state)
{
	struct nsinit_cfg cfg = {0};
	int stray = open("/dev/null", O_RDONLY); /* not close-on-exec, and not kept */
	struct seen s;
	pid_t init, child;

	skip_unless_root();
	assert_true(stray >= 0);
	spawn_and_look(&cfg, &s, &init, &child);
	close(stray);
	assert_int_equal(s.open_fds, 4); /* stdio and the report pipe */
	assert_int_equal(count_fds_of(init), 3);

	kill(init, SIGKILL);
	wait_init_exit_code(init);
}

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static void init_exits_with_the_child_status(void **state)
{
	struct nsinit_cfg cfg = {0};
	struct ferry_err err = {0};
	pid_t init, child;

	skip_unless_root();
	assert_int_equal(nsinit_spawn(&cfg, return_arg, (void *)42, &init, &child, &err), 0);
	spawned_init = init;
	assert_int_equal(wait_init_exit_code(init), 42);
	assert_no_children_left();
}

static int wait_for_signal(void *arg)
{
	for (;;)
		pause();
	return 0;
}

static void init_forwards_signals_and_exits_128_plus_signal(void **state)
{
	struct nsinit_cfg cfg = {0};
	struct ferry_err err = {0};
	pid_t init, child;

	skip_unless_root();
	assert_int_equal(nsinit_spawn(&cfg, wait_for_signal, NULL, &init, &child, &err), 0);
	spawned_init = init;
	/* the init has a handler and would survive SIGUSR1; PID 2 dies of it */
	assert_int_equal(kill(init, SIGUSR1), 0);
	assert_int_equal(wait_init_exit_code(init), 128 + SIGUSR1);
	assert_int_equal(kill(child, 0), -1);

	assert_int_equal(nsinit_spawn(&cfg, wait_for_signal, NULL, &init, &child, &err), 0);
	spawned_init = init;
	assert_int_equal(kill(init, SIGTERM), 0);
	assert_int_equal(wait_init_exit_code(init), 128 + SIGTERM);
	assert_no_children_left();
}

static int release_fd = -1, made_fd = -1;

/* Leave orphans behind, say so, then wait until the test lets PID 2 go. */
static int leave_orphans(void *arg)
{
	char c = 'o';

	for (int i = 0; i < 4; i++) {
		if (fork() == 0) {
			if (fork() == 0) {
				usleep(20000);
				_exit(0);
			}
			_exit(0);
		}
	}
	/* once their parents are gone, the grandchildren are the init's */
	while (wait(NULL) > 0)
		;
	if (write(made_fd, &c, 1) != 1)
		return 1;
	while (read(release_fd, &c, 1) < 0 && errno == EINTR)
		;
	return 7;
}

/* The init's children, as listed in /proc; returns how many (up to max). */
static int init_children(pid_t init, pid_t *pids, int max)
{
	char path[64];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", init, init);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (n < max && fscanf(f, "%d", &pids[n]) == 1)
		n++;
	fclose(f);
	return n;
}

static void init_reaps_orphans_and_outlives_them(void **state)
{
	struct nsinit_cfg cfg = {0};
	struct ferry_err err = {0};
	pid_t init, child, kids[16];
	int p[2], made[2], n = 0;
	char c;

	skip_unless_root();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(made, O_CLOEXEC), 0);
	release_fd = p[0];
	made_fd = made[1];
	cfg.keep_fds[cfg.n_keep_fds++] = p[0];
	cfg.keep_fds[cfg.n_keep_fds++] = made[1];
	assert_int_equal(nsinit_spawn(&cfg, leave_orphans, NULL, &init, &child, &err), 0);
	spawned_init = init;
	close(p[0]);
	close(made[1]);
	assert_int_equal(read(made[0], &c, 1), 1);
	close(made[0]);
	/* the orphans end and the init reaps them: soon PID 2 is its only child */
	for (int tries = 0; tries < 500; tries++) {
		n = init_children(init, kids, 16);
		if (n == 1)
			break;
		usleep(10000);
	}
	assert_int_equal(n, 1);
	assert_int_equal(kids[0], child);
	close(p[1]);
	assert_int_equal(wait_init_exit_code(init), 7);
}

static void impossible_offset_fails_and_leaves_nothing_running(void **state)
{
	struct nsinit_cfg cfg = {.set_time_offsets = true};
	struct ferry_err err = {0};
	pid_t init = 0, child = 0;

	skip_unless_root();
	/* CLOCK_MONOTONIC would go below zero */
	cfg.monotonic_off_ns = -clock_ns(CLOCK_MONOTONIC) - 100 * NSEC_PER_SEC;
	assert_int_equal(nsinit_spawn(&cfg, return_arg, NULL, &init, &child, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "time namespace offsets"));
	assert_no_children_left();
}

static void too_many_keep_fds_are_refused(void **state)
{
	struct nsinit_cfg cfg = {.n_keep_fds = NSINIT_MAX_KEEP_FDS + 1};
	struct ferry_err err = {0};
	pid_t init, child;

	assert_int_equal(nsinit_spawn(&cfg, return_arg, NULL, &init, &child, &err), -EINVAL);
	assert_no_children_left();
}

/* every test may leave an init behind when an assertion fails: the teardown kills it */
#define NSINIT_TEST(f) cmocka_unit_test_teardown(f, kill_spawned_init)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    NSINIT_TEST(time_offsets_shift_both_clocks_inside),
	    NSINIT_TEST(child_is_pid_2_under_ferry_init_in_new_namespaces),
	    NSINIT_TEST(init_keeps_only_stdio_and_child_gets_keep_fds),
	    NSINIT_TEST(init_exits_with_the_child_status),
	    NSINIT_TEST(init_forwards_signals_and_exits_128_plus_signal),
	    NSINIT_TEST(init_reaps_orphans_and_outlives_them),
	    NSINIT_TEST(impossible_offset_fails_and_leaves_nothing_running),
	    NSINIT_TEST(too_many_keep_fds_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
