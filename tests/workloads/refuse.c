/*
 * refuse: one resource that ferry cannot dump (yet) and must refuse to.
 *
 *   refuse OUTFILE MODE
 *
 *   socket       a UNIX stream socketpair with 5 bytes in flight
 *   eventfd      an eventfd with counter 5
 *   epoll        an epoll instance watching a pipe
 *   thread       a second thread, sleeping (all signals blocked in it)
 *   child        a forked child, sleeping; it dies with us (PR_SET_PDEATHSIG)
 *   seccomp      no_new_privs and a filter that allows everything
 *   posix-timer  timer_create on CLOCK_MONOTONIC, armed for 1000 s
 *   sysv-shm     a 1 MiB SysV segment, attached, then IPC_RMID
 *   userfaultfd  a userfaultfd after the UFFDIO_API handshake
 *   io_uring     io_uring_setup with 8 entries, rings mapped
 *   aio          an io_setup context (8 events)
 *   flock        LOCK_EX held on a temp file
 *
 * It prints "ready" and waits; on SIGUSR2 it PASSes without checking anything:
 * the test checks that ferry refused the dump and left the process running.
 * If the kernel lacks the feature (io_uring, userfaultfd, aio, seccomp,
 * posix-timer, sysv-shm), it prints "# unsupported: ..." and exits 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

static pid_t child = -1;

static void setup_socket(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		wl_setup_fail("socketpair: %s", strerror(errno));
	if (wl_write_all(sv[0], "hello", 5) != 5)
		wl_setup_fail("write socket: %s", strerror(errno));
}

static void setup_eventfd(void)
{
	if (eventfd(5, 0) < 0)
		wl_setup_fail("eventfd: %s", strerror(errno));
}

static void setup_epoll(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int p[2], ep = epoll_create1(0);

	if (ep < 0 || pipe(p))
		wl_setup_fail("epoll_create1/pipe: %s", strerror(errno));
	ev.data.fd = p[0];
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		wl_setup_fail("epoll_ctl: %s", strerror(errno));
}

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static void setup_thread(void)
{
	sigset_t all, old;
	pthread_t t;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread never takes SIGUSR2 */
	err = pthread_create(&t, NULL, sleeper, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		wl_setup_fail("pthread_create: %s", strerror(err));
}

static void setup_child(void)
{
	pid_t parent = getpid();

	child = fork();
	if (child < 0)
		wl_setup_fail("fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGUSR2, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(0);
		for (;;)
			pause();
	}
}

static void setup_seccomp(void)
{
	struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_fprog prog = {1, allow};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_unsupported("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		wl_unsupported("seccomp filter: %s", strerror(errno));
}

static void on_alarm(int sig)
{
}

static void setup_posix_timer(void)
{
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
	struct itimerspec its = {{0, 0}, {1000, 0}};
	timer_t timer;

	signal(SIGALRM, on_alarm);
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &its, NULL))
		wl_unsupported("posix timer: %s", strerror(errno));
}

static void setup_sysv_shm(void)
{
	int id = shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600);
	void *p;

	if (id < 0)
		wl_unsupported("shmget: %s", strerror(errno));
	p = shmat(id, NULL, 0);
	if (p == (void *)-1) {
		shmctl(id, IPC_RMID, NULL);
		wl_unsupported("shmat: %s", strerror(errno));
	}
	wl_fill(p, 1 << 20, 0x5);
	shmctl(id, IPC_RMID, NULL);
}

static void setup_userfaultfd(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		wl_unsupported("userfaultfd: %s", strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api))
		wl_unsupported("UFFDIO_API: %s", strerror(errno));
}

static void setup_io_uring(void)
{
	struct io_uring_params params;
	int fd;

	memset(&params, 0, sizeof(params));
	fd = (int)syscall(SYS_io_uring_setup, 8, &params);
	if (fd < 0)
		wl_unsupported("io_uring_setup: %s", strerror(errno));
	if (mmap(NULL, params.sq_off.array + params.sq_entries * sizeof(__u32),
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		 IORING_OFF_SQ_RING) == MAP_FAILED)
		wl_unsupported("mmap io_uring SQ ring: %s", strerror(errno));
}

static void setup_aio(void)
{
	aio_context_t ctx = 0;

	if (syscall(SYS_io_setup, 8, &ctx))
		wl_unsupported("io_setup: %s", strerror(errno));
}

static void setup_flock(void)
{
	char path[PATH_MAX];
	int fd = wl_temp_file(path, sizeof(path), "flock");

	while (flock(fd, LOCK_EX))
		if (errno != EINTR)
			wl_setup_fail("flock: %s", strerror(errno));
}

static const struct {
	const char *name;
	void (*setup)(void);
} modes[] = {
    {"socket", setup_socket},
    {"eventfd", setup_eventfd},
    {"epoll", setup_epoll},
    {"thread", setup_thread},
    {"child", setup_child},
    {"seccomp", setup_seccomp},
    {"posix-timer", setup_posix_timer},
    {"sysv-shm", setup_sysv_shm},
    {"userfaultfd", setup_userfaultfd},
    {"io_uring", setup_io_uring},
    {"aio", setup_aio},
    {"flock", setup_flock},
};

int main(int argc, char **argv)
{
	size_t m;

	wl_start(argc, argv, 1,
		 "socket|eventfd|epoll|thread|child|seccomp|posix-timer|sysv-shm|"
		 "userfaultfd|io_uring|aio|flock");
	for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		if (!strcmp(argv[2], modes[m].name))
			break;
	if (m == sizeof(modes) / sizeof(modes[0]))
		wl_setup_fail("unknown mode '%s'", argv[2]);
	modes[m].setup();
	wl_say("mode %s", modes[m].name);
	wl_ready();

	wl_wait_for_check();

	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	wl_finish();
}
