/*
 * ferry check: does this kernel have what ferry relies on?
 *
 * Every line is one feature, found out by trying it, not by reading a version
 * or a config file: a probe either does the real thing (seize a child, clone
 * into a new PID namespace with set_tid, write-protect memory and scan it...)
 * or reports why it could not. Probes that change namespaces or could upset
 * ferry itself run in a forked child and report back over a pipe. A missing
 * feature says how to get it; the exit status is 1 when a required one is
 * missing.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/nsinit.h"
#include "core/util.h"
#include "core/vdso.h"
#include "proc/proc.h"

/* Debian 12's headers are Linux 6.1: what came later is in mem/kapi.h. */
#include "mem/dirty.h"
#include "mem/kapi.h"
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef ARCH_MAP_VDSO_64
#define ARCH_MAP_VDSO_64 0x2003
#endif

#define PM_SOFT_DIRTY (1ULL << 55)

/* What a probe learnt: a detail when the feature works, the reason when it does not. */
#define PROBE_MSG 320

static const char check_help[] =
	"usage: ferry check [-vN] [-o LOG]\n"
	"\n"
	"Try every kernel feature ferry relies on and print one line for each:\n"
	"\"ok\" (with what was found) or \"MISSING\" (with how to get it). Exits 1 if a\n"
	"required feature is missing, 0 otherwise.\n"
	"\n"
	"options:\n"
	"  -vN, --verbosity=N    log level: 0 errors .. 4 trace (-v alone: 3)\n"
	"  -o, --log-file LOG    write the log to LOG\n"
	"  -h, --help            show this help\n";

static int fail_msg(char *msg, const char *what)
{
	int e = errno ? errno : EIO;

	snprintf(msg, PROBE_MSG, "%s: %s", what, strerror(e));
	return e;
}

/* ------------------------------------------------------------------------ */
/* Helpers: children to probe on, probes in children                        */

/* A child that only waits to be looked at; it dies with ferry check. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (;;)
			pause();
	}
	return pid;
}

static void stop_child(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static int wait_status(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

struct probe_report {
	int code;
	char msg[PROBE_MSG];
};

/*
 * Run probe(msg) in a forked child, so that what it changes (namespaces,
 * clear_refs, a crash) stays there; its result comes back over a pipe.
 */
static int probe_in_child(int (*probe)(char *msg), char *msg)
{
	struct probe_report rep = {0};
	int p[2], r, status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return fail_msg(msg, "pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return fail_msg(msg, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		rep.code = probe(rep.msg);
		write_all(p[1], &rep, sizeof(rep));
		_exit(0);
	}
	close(p[1]);
	r = read_all(p[0], &rep, sizeof(rep));
	close(p[0]);
	status = wait_status(pid);
	if (r < 0) {
		if (status >= 0 && WIFSIGNALED(status))
			snprintf(msg, PROBE_MSG, "the probe died of signal %d", WTERMSIG(status));
		else
			snprintf(msg, PROBE_MSG, "the probe ended without an answer");
		return EIO;
	}
	memcpy(msg, rep.msg, PROBE_MSG);
	msg[PROBE_MSG - 1] = '\0';
	return rep.code;
}

/* ------------------------------------------------------------------------ */
/* ptrace                                                                   */

/* The seized, stopped child the ptrace probes share. */
static pid_t tracee = -1;
static bool tracee_stopped;

static int probe_ptrace_seize(char *msg)
{
	int status;

	tracee = spawn_sleeper();
	if (tracee < 0)
		return fail_msg(msg, "fork");
	if (ptrace(PTRACE_SEIZE, tracee, 0, 0) < 0)
		return fail_msg(msg, "PTRACE_SEIZE");
	if (ptrace(PTRACE_INTERRUPT, tracee, 0, 0) < 0)
		return fail_msg(msg, "PTRACE_INTERRUPT");
	status = wait_status(tracee);
	if (status < 0)
		return fail_msg(msg, "wait for the tracee");
	if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP) {
		snprintf(msg, PROBE_MSG, "PTRACE_INTERRUPT gave wait status 0x%x, not a group stop",
			 status);
		return EPROTO;
	}
	tracee_stopped = true;
	snprintf(msg, PROBE_MSG, "seized and stopped a child");
	return 0;
}

static int need_tracee(char *msg)
{
	if (tracee_stopped)
		return 0;
	snprintf(msg, PROBE_MSG, "not tried: no child could be seized");
	return ESRCH;
}

static int probe_xstate(char *msg)
{
	static uint8_t buf[64 * 1024] __attribute__((aligned(64)));
	struct iovec iov = {buf, sizeof(buf)};
	uint64_t xfeatures;

	if (need_tracee(msg))
		return ESRCH;
	if (ptrace(PTRACE_GETREGSET, tracee, NT_X86_XSTATE, &iov) < 0)
		return fail_msg(msg, "PTRACE_GETREGSET NT_X86_XSTATE");
	/* ptrace puts the xfeatures the kernel saves (XCR0) in the first sw_reserved word */
	memcpy(&xfeatures, buf + 464, sizeof(xfeatures));
	snprintf(msg, PROBE_MSG, "%zu bytes, xcr0 0x%" PRIx64, iov.iov_len, xfeatures);
	return 0;
}

struct rseq_config {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

static int probe_rseq(char *msg)
{
	struct rseq_config cfg = {0};

	if (need_tracee(msg))
		return ESRCH;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tracee, sizeof(cfg), &cfg) < 0)
		return fail_msg(msg, "PTRACE_GET_RSEQ_CONFIGURATION");
	if (cfg.rseq_abi_pointer)
		snprintf(msg, PROBE_MSG, "the child's rseq: %u bytes, signature 0x%08x",
			 cfg.rseq_abi_size, cfg.signature);
	else
		snprintf(msg, PROBE_MSG, "works (the child has no rseq registered)");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* processes and namespaces                                                 */

/* PID 1 of the probe's namespace: now make a PID 2 the way a ferry init does. */
static int set_tid_two(void)
{
	pid_t two = 2, pid;
	int status;

	if (getpid() != 1)
		return 1;
	pid = raw_clone3(0, &two, 1);
	if (pid < 0)
		return 2;
	if (pid == 0)
		_exit(getpid() == 2 ? 0 : 1);
	status = wait_status(pid);
	return status == 0 ? 0 : 3;
}

static int probe_set_tid(char *msg)
{
	static const char *const why[] = {
		"", "set_tid {1} did not give pid 1", "clone3 with set_tid {2} failed",
		"set_tid {2} did not give pid 2"};
	pid_t one = 1, pid;
	int status;

	if (unshare(CLONE_NEWPID) < 0)
		return fail_msg(msg, "unshare(CLONE_NEWPID)");
	pid = raw_clone3(0, &one, 1);
	if (pid < 0)
		return fail_msg(msg, "clone3 with set_tid {1} in a new PID namespace");
	if (pid == 0)
		_exit(set_tid_two());
	status = wait_status(pid);
	if (status < 0)
		return fail_msg(msg, "wait");
	if (!WIFEXITED(status) || (size_t)WEXITSTATUS(status) >= ARRAY_SIZE(why)) {
		snprintf(msg, PROBE_MSG, "PID 1 of the new namespace ended with status 0x%x",
			 status);
		return EPROTO;
	}
	if (WEXITSTATUS(status)) {
		snprintf(msg, PROBE_MSG, "%s", why[WEXITSTATUS(status)]);
		return EPROTO;
	}
	snprintf(msg, PROBE_MSG, "pid 1 in a new PID namespace, then pid 2 inside it");
	return 0;
}

static int probe_pidfd_open(char *msg)
{
	pid_t pid = spawn_sleeper();
	int pidfd, r = 0;

	if (pid < 0)
		return fail_msg(msg, "fork");
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		r = fail_msg(msg, "pidfd_open");
	else if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		r = fail_msg(msg, "pidfd_send_signal");
	else
		snprintf(msg, PROBE_MSG, "opened and signalled a child");
	if (pidfd >= 0)
		close(pidfd);
	stop_child(pid);
	return r;
}

/* Take an eventfd out of a child and check it is the same file. */
static int getfd_from(pid_t pid, int efd, char *msg)
{
	_cleanup_close_ int pidfd = syscall(SYS_pidfd_open, pid, 0);
	_cleanup_close_ int fd = -1;
	uint64_t v = 7, got = 0;

	if (pidfd < 0)
		return fail_msg(msg, "not tried: pidfd_open");
	fd = syscall(SYS_pidfd_getfd, pidfd, efd, 0);
	if (fd < 0)
		return fail_msg(msg, "pidfd_getfd");
	if (write(fd, &v, sizeof(v)) != sizeof(v) || read(efd, &got, sizeof(got)) != sizeof(got))
		return fail_msg(msg, "use the fd taken with pidfd_getfd");
	if (got != v) {
		snprintf(msg, PROBE_MSG, "pidfd_getfd gave a different file");
		return EPROTO;
	}
	snprintf(msg, PROBE_MSG, "took an eventfd from a child (close-on-exec: %s)",
		 fcntl(fd, F_GETFD) & FD_CLOEXEC ? "set" : "clear");
	return 0;
}

static int probe_pidfd_getfd(char *msg)
{
	_cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pid_t pid;
	int r;

	if (efd < 0)
		return fail_msg(msg, "eventfd");
	pid = spawn_sleeper();
	if (pid < 0)
		return fail_msg(msg, "fork");
	r = getfd_from(pid, efd, msg);
	stop_child(pid);
	return r;
}

static volatile uint64_t vm_probe_word = 0x1111;

static int probe_process_vm(char *msg)
{
	uint64_t v = 0x2222, back = 0;
	struct iovec local = {&v, sizeof(v)};
	struct iovec remote = {(void *)&vm_probe_word, sizeof(v)};
	pid_t pid = spawn_sleeper();
	int r = 0;

	if (pid < 0)
		return fail_msg(msg, "fork");
	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != sizeof(v)) {
		r = fail_msg(msg, "process_vm_writev");
		goto out;
	}
	local.iov_base = &back;
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(v)) {
		r = fail_msg(msg, "process_vm_readv");
		goto out;
	}
	if (back != v || vm_probe_word != 0x1111) {
		snprintf(msg, PROBE_MSG, "read back 0x%" PRIx64 " instead of 0x%" PRIx64, back, v);
		r = EPROTO;
		goto out;
	}
	snprintf(msg, PROBE_MSG, "wrote and read back a child's memory");
out:
	stop_child(pid);
	return r;
}

static int probe_time_ns_child(char *msg)
{
	const int64_t off = 86400;
	struct timespec outside;
	pid_t pid;
	int fd, status;

	if (access("/proc/self/ns/time", F_OK) < 0)
		return fail_msg(msg, "/proc/self/ns/time");
	if (unshare(CLONE_NEWTIME) < 0)
		return fail_msg(msg, "unshare(CLONE_NEWTIME)");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_msg(msg, "open /proc/self/timens_offsets");
	if (dprintf(fd, "monotonic %" PRId64 " 0\n", off) < 0) {
		close(fd);
		return fail_msg(msg, "write /proc/self/timens_offsets");
	}
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &outside);
	pid = fork();
	if (pid < 0)
		return fail_msg(msg, "fork into the time namespace");
	if (pid == 0) {
		struct timespec inside;
		int64_t shift;

		clock_gettime(CLOCK_MONOTONIC, &inside);
		shift = inside.tv_sec - outside.tv_sec;
		_exit(shift >= off && shift <= off + 1 ? 0 : 1);
	}
	status = wait_status(pid);
	if (status != 0) {
		snprintf(msg, PROBE_MSG, "CLOCK_MONOTONIC inside is not shifted by the offset");
		return EPROTO;
	}
	snprintf(msg, PROBE_MSG, "a +%" PRId64 " s CLOCK_MONOTONIC offset shows inside", off);
	return 0;
}

static int probe_time_ns(char *msg)
{
	return probe_in_child(probe_time_ns_child, msg);
}

static int probe_set_tid_isolated(char *msg)
{
	return probe_in_child(probe_set_tid, msg);
}

/* ------------------------------------------------------------------------ */
/* memory: userfaultfd, pagemap                                             */

static const struct {
	uint64_t bit;
	const char *name;
} uffd_features[] = {
	{UFFD_FEATURE_WP_ASYNC, "wp-async"},
	{UFFD_FEATURE_WP_UNPOPULATED, "wp-unpopulated"},
	{UFFD_FEATURE_MOVE, "move"},
	{UFFD_FEATURE_PAGEFAULT_FLAG_WP, "pagefault-flag-wp"},
	{UFFD_FEATURE_EVENT_FORK, "event-fork"},
	{UFFD_FEATURE_EVENT_REMAP, "event-remap"},
	{UFFD_FEATURE_EVENT_REMOVE, "event-remove"},
	{UFFD_FEATURE_EVENT_UNMAP, "event-unmap"},
	{UFFD_FEATURE_MISSING_HUGETLBFS, "missing-hugetlbfs"},
	{UFFD_FEATURE_MISSING_SHMEM, "missing-shmem"},
	{UFFD_FEATURE_SIGBUS, "sigbus"},
	{UFFD_FEATURE_THREAD_ID, "thread-id"},
	{UFFD_FEATURE_MINOR_HUGETLBFS, "minor-hugetlbfs"},
	{UFFD_FEATURE_MINOR_SHMEM, "minor-shmem"},
	{UFFD_FEATURE_EXACT_ADDRESS, "exact-address"},
	{UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "wp-hugetlbfs-shmem"},
	{UFFD_FEATURE_POISON, "poison"},
};

/* The features ferry's dirty tracking and lazy restore need. */
#define UFFD_FERRY_FEATURES                                                                        \
	(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_EVENT_FORK |         \
	 UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

static int uffd_api(int fd, uint64_t want, uint64_t *features)
{
	struct uffdio_api api = {.api = UFFD_API, .features = want};

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -1;
	*features = api.features;
	return 0;
}

static void describe_features(uint64_t features, char *msg)
{
	size_t n = snprintf(msg, PROBE_MSG, "features:");

	for (size_t i = 0; i < ARRAY_SIZE(uffd_features) && n < PROBE_MSG; i++)
		if (features & uffd_features[i].bit)
			n += snprintf(msg + n, PROBE_MSG - n, " %s", uffd_features[i].name);
	if ((features & UFFD_FERRY_FEATURES) != UFFD_FERRY_FEATURES && n < PROBE_MSG)
		snprintf(msg + n, PROBE_MSG - n, " (lacks some ferry uses: 0x%" PRIx64 ")",
			 (uint64_t)UFFD_FERRY_FEATURES & ~features);
}

static int probe_userfaultfd(char *msg)
{
	_cleanup_close_ int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	uint64_t features;

	if (fd < 0)
		return fail_msg(msg, "userfaultfd()");
	if (uffd_api(fd, 0, &features) < 0)
		return fail_msg(msg, "UFFDIO_API");
	describe_features(features, msg);
	return 0;
}

static int probe_dev_userfaultfd(char *msg)
{
	_cleanup_close_ int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *sysctl = NULL;
	struct ferry_err err;
	uint64_t features;

	if (dev < 0)
		return fail_msg(msg, "open /dev/userfaultfd");
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail_msg(msg, "USERFAULTFD_IOC_NEW");
	if (uffd_api(fd, 0, &features) < 0)
		return fail_msg(msg, "UFFDIO_API");
	if (read_file("/proc/sys/vm/unprivileged_userfaultfd", &sysctl, NULL, &err) == 0)
		sysctl[strcspn(sysctl, "\n")] = '\0';
	snprintf(msg, PROBE_MSG, "USERFAULTFD_IOC_NEW works (vm.unprivileged_userfaultfd = %s)",
		 sysctl ? sysctl : "?");
	return 0;
}

/* PAGEMAP_SCAN over [start, end) of our own memory; returns the regions found or -1. */
static long pagemap_scan(int pagemap, void *start, size_t len, uint64_t flags, uint64_t mask,
			 struct page_region *vec, size_t vec_len)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = mask,
		.return_mask = mask,
	};

	return ioctl(pagemap, PAGEMAP_SCAN, &arg);
}

/* One region of pages [first, first + count) of base, and nothing else? */
static bool is_one_region(const struct page_region *vec, long n, char *base, size_t first,
			  size_t count)
{
	return n == 1 && vec[0].start == (uintptr_t)(base + first * PAGE_SIZE) &&
	       vec[0].end == (uintptr_t)(base + (first + count) * PAGE_SIZE);
}

static int probe_pagemap_scan(char *msg)
{
	_cleanup_close_ int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region vec[8];
	size_t len = 8 * PAGE_SIZE;
	char *mem;
	long n;
	int r = 0;

	if (pagemap < 0)
		return fail_msg(msg, "open /proc/self/pagemap");
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_msg(msg, "mmap");
	mem[0] = mem[PAGE_SIZE] = mem[5 * PAGE_SIZE] = 1;
	n = pagemap_scan(pagemap, mem, len, 0, PAGE_IS_PRESENT, vec, ARRAY_SIZE(vec));
	if (n < 0) {
		r = fail_msg(msg, "ioctl PAGEMAP_SCAN");
	} else if (n != 2 || !is_one_region(vec, 1, mem, 0, 2) ||
		   !is_one_region(vec + 1, 1, mem, 5, 1)) {
		snprintf(msg, PROBE_MSG, "found %ld regions of present pages instead of 2", n);
		r = EPROTO;
	} else {
		snprintf(msg, PROBE_MSG, "found the present pages");
	}
	munmap(mem, len);
	return r;
}

/*
 * One pre-copy round the way ferry does it: write-protect (async, no fault
 * handler), write a page, scan for written pages and protect them again, write
 * another, scan again.
 */
static int uffd_wp_rounds(int uffd, int pagemap, char *mem, size_t len, char *msg)
{
	const uint64_t scan = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	struct page_region vec[8];
	struct ferry_err err;
	long n;

	if (uffd_wp_register(uffd, (uintptr_t)mem, (uintptr_t)mem + len, &err) < 0 ||
	    uffd_wp_protect(uffd, (uintptr_t)mem, (uintptr_t)mem + len, &err) < 0) {
		snprintf(msg, PROBE_MSG, "%.300s", err.msg);
		return err.code ? err.code : EIO;
	}
	mem[2 * PAGE_SIZE] = 2;
	n = pagemap_scan(pagemap, mem, len, scan, PAGE_IS_WRITTEN, vec, ARRAY_SIZE(vec));
	if (n < 0)
		return fail_msg(msg, "PAGEMAP_SCAN with PM_SCAN_WP_MATCHING");
	if (!is_one_region(vec, n, mem, 2, 1)) {
		snprintf(msg, PROBE_MSG, "first round: %ld written regions, not page 2 alone", n);
		return EPROTO;
	}
	mem[0] = 3;
	n = pagemap_scan(pagemap, mem, len, scan, PAGE_IS_WRITTEN, vec, ARRAY_SIZE(vec));
	if (n < 0)
		return fail_msg(msg, "PAGEMAP_SCAN with PM_SCAN_WP_MATCHING");
	if (!is_one_region(vec, n, mem, 0, 1)) {
		snprintf(msg, PROBE_MSG, "second round: %ld written regions, not page 0 alone", n);
		return EPROTO;
	}
	snprintf(msg, PROBE_MSG, "two rounds found exactly the written pages");
	return 0;
}

static int probe_uffd_wp_async(char *msg)
{
	const uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	_cleanup_close_ int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	_cleanup_close_ int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	size_t len = 4 * PAGE_SIZE;
	uint64_t features;
	char *mem;
	int r;

	if (uffd < 0)
		return fail_msg(msg, "userfaultfd()");
	if (pagemap < 0)
		return fail_msg(msg, "open /proc/self/pagemap");
	if (uffd_api(uffd, want, &features) < 0)
		return fail_msg(msg, "UFFDIO_API with wp-async and wp-unpopulated");
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_msg(msg, "mmap");
	memset(mem, 1, len);
	r = uffd_wp_rounds(uffd, pagemap, mem, len, msg);
	munmap(mem, len);
	return r;
}

static int pagemap_entry(int pagemap, const void *addr, uint64_t *entry)
{
	off_t off = (uintptr_t)addr / PAGE_SIZE * sizeof(*entry);

	return pread(pagemap, entry, sizeof(*entry), off) == sizeof(*entry) ? 0 : -1;
}

/* Runs in a child: clear_refs resets the soft-dirty bits of the whole process. */
static int probe_soft_dirty_child(char *msg)
{
	_cleanup_close_ int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int clear = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	volatile char *mem;
	uint64_t before, after;

	if (pagemap < 0)
		return fail_msg(msg, "open /proc/self/pagemap");
	if (clear < 0)
		return fail_msg(msg, "open /proc/self/clear_refs");
	mem = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_msg(msg, "mmap");
	mem[0] = 1;
	if (write(clear, "4", 1) != 1)
		return fail_msg(msg, "write 4 to /proc/self/clear_refs");
	if (pagemap_entry(pagemap, (const void *)mem, &before) < 0)
		return fail_msg(msg, "read pagemap");
	mem[0] = 2;
	if (pagemap_entry(pagemap, (const void *)mem, &after) < 0)
		return fail_msg(msg, "read pagemap");
	if (before & PM_SOFT_DIRTY) {
		snprintf(msg, PROBE_MSG, "pagemap bit 55 stays set after clear_refs");
		return ENOTSUP;
	}
	if (!(after & PM_SOFT_DIRTY)) {
		snprintf(msg, PROBE_MSG, "pagemap bit 55 stays clear after a write");
		return ENOTSUP;
	}
	snprintf(msg, PROBE_MSG, "a write after clear_refs sets pagemap bit 55");
	return 0;
}

static int probe_soft_dirty(char *msg)
{
	return probe_in_child(probe_soft_dirty_child, msg);
}

/* ------------------------------------------------------------------------ */
/* restore helpers: vDSO, mm map, TCP repair                                */

static int probe_map_vdso_child(char *msg)
{
	/* with a vDSO already mapped, an existing ARCH_MAP_VDSO_64 answers EEXIST */
	if (syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, 0x100000000UL) == 0) {
		snprintf(msg, PROBE_MSG, "arch_prctl present (it mapped a second vDSO)");
		return 0;
	}
	if (errno == EEXIST) {
		snprintf(msg, PROBE_MSG, "arch_prctl present (refuses while a vDSO is mapped)");
		return 0;
	}
	return fail_msg(msg, "arch_prctl(ARCH_MAP_VDSO_64)");
}

static int probe_map_vdso(char *msg)
{
	return probe_in_child(probe_map_vdso_child, msg);
}

static int probe_tcp_repair(char *msg)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1, off = 0;

	if (fd < 0)
		return fail_msg(msg, "socket");
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return fail_msg(msg, "setsockopt TCP_REPAIR");
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
		return fail_msg(msg, "setsockopt TCP_REPAIR off");
	snprintf(msg, PROBE_MSG, "a socket went into repair mode and out");
	return 0;
}

/* Fill a prctl_mm_map with what the calling process has now (from /proc/self/stat). */
static int current_mm_map(struct prctl_mm_map *map, char *msg)
{
	struct proc_stat st;
	struct ferry_err err;

	if (proc_parse_stat(getpid(), &st, &err) < 0) {
		snprintf(msg, PROBE_MSG, "%.300s", err.msg);
		return err.code ? err.code : EIO;
	}
	memset(map, 0, sizeof(*map));
	map->start_code = st.start_code;
	map->end_code = st.end_code;
	map->start_stack = st.start_stack;
	map->start_data = st.start_data;
	map->end_data = st.end_data;
	map->start_brk = st.start_brk;
	map->brk = syscall(SYS_brk, 0);
	map->arg_start = st.arg_start;
	map->arg_end = st.arg_end;
	map->env_start = st.env_start;
	map->env_end = st.env_end;
	map->exe_fd = -1;
	return 0;
}

/* Runs in a child: sets the mm fields to what they already are. */
static int probe_mm_map_child(char *msg)
{
	struct prctl_mm_map map;
	unsigned int size = 0;
	int r;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) < 0)
		return fail_msg(msg, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)");
	if (size != sizeof(map)) {
		snprintf(msg, PROBE_MSG, "the kernel's prctl_mm_map has %u bytes, ferry's %zu",
			 size, sizeof(map));
		return EPROTO;
	}
	r = current_mm_map(&map, msg);
	if (r)
		return r;
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0) < 0)
		return fail_msg(msg, "prctl(PR_SET_MM, PR_SET_MM_MAP) with the current values");
	snprintf(msg, PROBE_MSG, "struct of %u bytes; setting the current values works", size);
	return 0;
}

static int probe_mm_map(char *msg)
{
	return probe_in_child(probe_mm_map_child, msg);
}

static int probe_vdso_layout(char *msg)
{
	struct vdso_layout l;
	int r = vdso_self_layout(&l);

	if (r < 0) {
		snprintf(msg, PROBE_MSG, "read /proc/self/maps: %s", strerror(-r));
		return -r;
	}
	if (!l.vdso_size) {
		snprintf(msg, PROBE_MSG, "no [vdso] in /proc/self/maps");
		return ENOENT;
	}
	snprintf(msg, PROBE_MSG, "[vvar] %lu KiB, [vvar_vclock] %lu KiB, [vdso] %lu KiB",
		 (unsigned long)l.vvar_size / 1024, (unsigned long)l.vclock_size / 1024,
		 (unsigned long)l.vdso_size / 1024);
	return 0;
}

/* The BPF VmFlags reader against smaps, on a child of ours that waits (our
 * own mappings would change under the probe as it allocates). */
static int probe_vma_flags(char *msg)
{
	struct ferry_err err = {0};
	struct vmaflags *vf = NULL;
	uint32_t seen;
	size_t n = 0;
	int ready[2], r;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return fail_msg(msg, "pipe");
	pid_t child = fork();
	if (child == 0) {
		close(ready[0]);
		if (write(ready[1], "r", 1) == 1)
			pause();
		_exit(0);
	}
	close(ready[1]);
	r = child < 0 ? -errno : read(ready[0], &c, 1) == 1 ? 0 : -EIO;
	close(ready[0]);
	if (r == 0)
		r = vmaflags_open(child, &vf, &err);
	else
		ferry_fail(&err, -r, "start a child to probe");
	if (r == 0)
		r = vmaflags_check_smaps(vf, child, &n, &seen, &err);
	vmaflags_close(vf);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (r == 0)
		snprintf(msg, PROBE_MSG, "%zu mappings, as smaps shows them, without its page walk",
			 n);
	else
		snprintf(msg, PROBE_MSG, "%.200s (dumps read /proc/PID/smaps: a longer freeze)",
			 err.msg);
	return r < 0 ? -r : 0;
}

/* ------------------------------------------------------------------------ */
/* the table                                                                */

struct feature {
	const char *name;
	bool required;
	int (*probe)(char *msg);
	const char *fix;
};

static const struct feature features[] = {
	{"ptrace seize/interrupt", true, probe_ptrace_seize,
	 "run as root (CAP_SYS_PTRACE); with Yama, sysctl kernel.yama.ptrace_scope=1 or lower"},
	{"ptrace xstate regset", true, probe_xstate,
	 "an x86-64 kernel with XSAVE support (PTRACE_GETREGSET NT_X86_XSTATE)"},
	{"ptrace rseq configuration", false, probe_rseq,
	 "Linux 5.13 or later (PTRACE_GET_RSEQ_CONFIGURATION)"},
	{"clone3 with set_tid", true, probe_set_tid_isolated,
	 "Linux 5.5 or later with CONFIG_PID_NS, run as root (CAP_SYS_ADMIN)"},
	{"pidfd_open", true, probe_pidfd_open, "Linux 5.3 or later"},
	{"pidfd_getfd", false, probe_pidfd_getfd,
	 "Linux 5.6 or later, and ptrace access to the target"},
	{"process_vm_readv/writev", true, probe_process_vm,
	 "a kernel with CONFIG_CROSS_MEMORY_ATTACH=y, and ptrace access to the target"},
	{"userfaultfd", false, probe_userfaultfd,
	 "a kernel with CONFIG_USERFAULTFD=y (Linux 6.7 or later for wp-async); for non-root "
	 "callers sysctl vm.unprivileged_userfaultfd=1"},
	{"/dev/userfaultfd", false, probe_dev_userfaultfd,
	 "Linux 6.1 or later; access to /dev/userfaultfd (mode 0600 root by default)"},
	{"PAGEMAP_SCAN", false, probe_pagemap_scan, "Linux 6.7 or later"},
	{"uffd-wp async tracking", false, probe_uffd_wp_async,
	 "Linux 6.7 or later with CONFIG_USERFAULTFD and CONFIG_PTE_MARKER_UFFD_WP"},
	{"soft-dirty", false, probe_soft_dirty, "a kernel with CONFIG_MEM_SOFT_DIRTY=y"},
	{"time namespaces", true, probe_time_ns,
	 "Linux 5.6 or later with CONFIG_TIME_NS=y, run as root (CAP_SYS_ADMIN, CAP_SYS_TIME)"},
	{"ARCH_MAP_VDSO_64", false, probe_map_vdso, "a kernel with CONFIG_CHECKPOINT_RESTORE=y"},
	{"TCP_REPAIR", false, probe_tcp_repair,
	 "run as root (CAP_NET_ADMIN); needed only for open TCP connections"},
	{"PR_SET_MM_MAP", true, probe_mm_map,
	 "a kernel with CONFIG_CHECKPOINT_RESTORE=y, run as root"},
	{"vDSO layout", false, probe_vdso_layout, "a kernel that maps a vDSO (vdso=1)"},
	{"BPF VmFlags reader", false, probe_vma_flags,
	 "build ferry with clang, bpftool and libbpf-dev installed; run as root (CAP_BPF, "
	 "CAP_PERFMON); a kernel with CONFIG_DEBUG_INFO_BTF=y (Linux 6.1 or later)"},
};

#define NAME_WIDTH 28

static void print_line(const char *name, bool ok, bool required, const char *msg,
		       const char *fix)
{
	if (ok)
		printf("%-*s ok       %s\n", NAME_WIDTH, name, msg);
	else
		printf("%-*s MISSING  %s: %s; fix: %s\n", NAME_WIDTH, name,
		       required ? "required" : "optional", msg, fix);
}

int cmd_check(int argc, char **argv)
{
	bool uffd_wp = false;
	struct ferry_opts o;
	int missing = 0, r;

	r = opts_parse("check", argc, argv, 0, check_help, &o);
	if (r > 0)
		return 0;
	if (r < 0)
		return 2;
	if (o.argc > 0) {
		fprintf(stderr, "ferry check: unexpected argument '%s' (see ferry check --help)\n",
			o.argv[0]);
		return 2;
	}

	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		const struct feature *f = &features[i];
		char msg[PROBE_MSG] = "";

		fflush(stdout);
		errno = 0;
		r = f->probe(msg);
		pr_debug("check %s: %s (%d)", f->name, msg, r);
		print_line(f->name, r == 0, f->required, msg, f->fix);
		if (r && f->required)
			missing++;
		if (f->probe == probe_uffd_wp_async)
			uffd_wp = r == 0;
	}
	stop_child(tracee);

	if (uffd_wp)
		print_line("dirty tracking backend", true, false, "uffd-wp (async) + PAGEMAP_SCAN",
			   "");
	else
		print_line("dirty tracking backend", false, false,
			   "none: full copies in every pre-dump round",
			   "Linux 6.7 or later (uffd-wp async)");

	if (missing) {
		printf("%d required feature%s missing: ferry cannot dump or restore here\n",
		       missing, missing == 1 ? " is" : "s are");
		return 1;
	}
	printf("all required features are present\n");
	return 0;
}
