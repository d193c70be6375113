/*
 * restore: the order of a restore.
 *
 *   load and check every image, file and the pid     (load.c)
 *   create the child with its pid (or PID 2 under a fresh ferry init)
 *   the child sets up its fds and waits               (child.c)
 *   seize it; address space and memory                (mm.c)
 *   signals, timers, mm fields, credentials           (task.c)
 *   close helper fds, rlimits, signal mask, registers, xsave, let it run
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "core/log.h"
#include "core/nsinit.h"
#include "core/util.h"
#include "restore/internal.h"

#ifndef PTRACE_SETSIGMASK
#define PTRACE_SETSIGMASK 0x420b
#endif

static int pick_helper_base(struct restore_ctx *r, struct ferry_err *err)
{
	int max_fd = 2;
	struct rlimit rl;

	for (size_t i = 0; i < r->fds->n_fds; i++)
		if (r->fds->fds[i]->fd > max_fd)
			max_fd = r->fds->fds[i]->fd;
	r->helper_base = max_fd + 1 > 256 ? max_fd + 1 : 256;
	int need = r->helper_base + 3 + r->pr.nr_layers + r->mm->n_files + r->fds->n_ofds;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    (rlim_t)need > rl.rlim_max)
		return ferry_fail(err, EMFILE, "the image needs fd %d, the fd limit is %lu", need,
				  (unsigned long)rl.rlim_max);
	return 0;
}

static int find_tty(struct restore_ctx *r, struct ferry_err *err)
{
	r->tty_fd = -1;
	for (size_t i = 0; i < r->fds->n_ofds; i++) {
		if (strcmp(r->fds->ofds[i]->kind, "tty"))
			continue;
		for (int fd = 0; fd < 3; fd++) {
			if (isatty(fd)) {
				r->tty_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
				if (r->tty_fd < 0)
					return ferry_fail_errno(err, "dup the terminal");
				return 0;
			}
		}
		return ferry_fail(err, ENOTTY,
				  "the image uses a terminal but ferry restore runs without one");
	}
	return 0;
}

static int create_host(struct restore_ctx *r, struct ferry_err *err)
{
	pid_t want = r->pe->pid;
	long pid = raw_clone3(0, &want, 1);

	if (pid < 0) {
		if (errno == EEXIST)
			return ferry_fail(err, EEXIST, "pid %d is in use", want);
		return ferry_fail_errno(err, "create process with pid %d", want);
	}
	if (pid == 0)
		_exit(restore_child_main(r));
	r->pid = pid;
	return 0;
}

static int create_in_ns(struct restore_ctx *r, struct ferry_err *err)
{
	struct nsinit_cfg cfg = {0};

	cfg.set_time_offsets = true;
	if (r->pstree->has_monotonic_at_dump_ns)
		cfg.monotonic_off_ns =
			r->pstree->monotonic_at_dump_ns - (int64_t)now_ns(CLOCK_MONOTONIC);
	if (r->pstree->has_boottime_at_dump_ns)
		cfg.boottime_off_ns =
			r->pstree->boottime_at_dump_ns - (int64_t)now_ns(CLOCK_BOOTTIME);
	cfg.keep_fds[cfg.n_keep_fds++] = r->ready[1];
	if (r->tty_fd >= 0)
		cfg.keep_fds[cfg.n_keep_fds++] = r->tty_fd;
	return nsinit_spawn(&cfg, restore_child_main, r, &r->init_pid, &r->pid, err);
}

/* Wait for the child's report: "K", or "E" and its error. */
static int wait_ready(struct restore_ctx *r, struct ferry_err *err)
{
	char buf[1100];
	ssize_t n;

	do
		n = read(r->ready[0], buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return ferry_fail(err, ECHILD, "the new process %d died while setting up", r->pid);
	buf[n] = '\0';
	if (buf[0] == 'K')
		return 0;
	return ferry_fail(err, EINVAL, "pid %d: %s", r->pe->pid, buf + 1);
}

int restore_rlimits(struct restore_ctx *r, struct ferry_err *err)
{
	for (size_t i = 0; i < r->task->n_rlimits; i++) {
		const Rlimit *l = r->task->rlimits[i];
		struct rlimit rl = {l->cur, l->max};
		if (prlimit(r->pid, l->resource, &rl, NULL) < 0)
			return ferry_fail_errno(err, "pid %d: set rlimit %u", r->pid, l->resource);
	}
	return 0;
}

int restore_finish(struct restore_ctx *r, struct ferry_err *err)
{
	struct user_regs_struct regs;
	uint64_t mask = r->core->blocked & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
	int ret;

	ret = infect_syscall_ok(&r->ic, "close helper fds", __NR_close_range, NULL, r->helper_base,
				~0U, 0, 0, 0, 0, err);
	if (ret == 0)
		ret = infect_scratch_unmap(&r->ic, err);
	if (ret < 0)
		return ret;
	if (ptrace(PTRACE_SETSIGMASK, r->pid, sizeof(mask), &mask) < 0)
		return ferry_fail_errno(err, "pid %d: set signal mask", r->pid);
	memcpy(&regs, r->core->gpregs.data, sizeof(regs));
	regs.orig_rax = -1;
	ret = infect_set_regs(r->pid, &regs, err);
	if (ret == 0)
		ret = infect_set_xstate(r->pid, r->core->xsave.data, r->core->xsave.len, err);
	return ret;
}

static void kill_all(struct restore_ctx *r)
{
	int status;

	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		if (!r->init_pid)
			waitpid(r->pid, &status, __WALL);
	}
	if (r->init_pid > 0) {
		kill(r->init_pid, SIGKILL);
		waitpid(r->init_pid, &status, 0);
	}
}

/* The child still has ferry's (glibc's) rseq area registered: the kernel would
 * write to it, and fault the child, once that memory is gone. */
static int forget_rseq(struct restore_ctx *r, struct ferry_err *err)
{
	struct rseq_conf rc;
	int ret = infect_get_rseq(r->pid, &rc, err);

	if (ret < 0 || !rc.registered)
		return ret;
	return infect_syscall_ok(&r->ic, "unregister ferry's rseq", __NR_rseq, NULL, rc.addr, rc.len,
				 1 /* RSEQ_FLAG_UNREGISTER */, rc.sig, 0, 0, err);
}

static int drive(struct restore_ctx *r, cpu_set_t *orig_cpus, struct ferry_err *err)
{
	int cpu, ret;

	ret = infect_seize(r->pid, &r->ic, err);
	if (ret < 0)
		return ferry_wrap(err, "take over the new process");
	/* tracer and tracee on one CPU: a round trip costs ~15 us instead of ~100 */
	cpu = pin_to_cpu(-1);
	if (cpu >= 0) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(r->pid, sizeof(one), &one);
	}
	ret = infect_find_syscall_ip(&r->ic, r->vdso.vdso_start, r->vdso.vdso_size, err);
	if (ret == 0)
		ret = forget_rseq(r, err);
	pr_debug("seized at %.2f ms", (mono_ns() - r->t0) / 1e6);
	if (ret == 0)
		ret = restore_mm(r, err);
	pr_debug("memory restored at %.2f ms", (mono_ns() - r->t0) / 1e6);
	if (ret == 0)
		ret = restore_task(r, err);
	if (ret == 0)
		ret = restore_finish(r, err);
	pr_debug("task restored at %.2f ms", (mono_ns() - r->t0) / 1e6);
	sched_setaffinity(r->pid, sizeof(*orig_cpus), orig_cpus);
	if (ret == 0)
		ret = restore_verify_wait(r, err); /* corrupt pages: it must never run */
	if (ret == 0)
		ret = infect_detach(&r->ic, err);
	return ret;
}

int ferry_restore(const struct restore_opts *o, struct restore_result *res, struct ferry_err *err)
{
	struct restore_ctx r = {.o = o, .dir = o->dir, .dirfd = -1, .tty_fd = -1,
				.ready = {-1, -1}, .uffd = -1};
	cpu_set_t orig_cpus;
	int ret;

	r.t0 = mono_ns();
	sched_getaffinity(0, sizeof(orig_cpus), &orig_cpus);
	ret = restore_load(&r, err);
	if (ret == 0)
		ret = restore_check(&r, err);
	if (ret == 0)
		ret = restore_verify_start(&r, err);
	if (ret == 0)
		ret = pick_helper_base(&r, err);
	if (ret == 0)
		ret = find_tty(&r, err);
	if (ret == 0 && pipe2(r.ready, O_CLOEXEC) < 0)
		ret = ferry_fail_errno(err, "pipe");
	if (ret < 0)
		goto out;
	pr_debug("images checked in %.2f ms", (mono_ns() - r.t0) / 1e6);
	ret = r.ferry_run ? create_in_ns(&r, err) : create_host(&r, err);
	close(r.ready[1]);
	r.ready[1] = -1;
	pr_debug("process created at %.2f ms", (mono_ns() - r.t0) / 1e6);
	if (ret == 0)
		ret = wait_ready(&r, err);
	pr_debug("process ready at %.2f ms", (mono_ns() - r.t0) / 1e6);
	if (ret == 0)
		ret = drive(&r, &orig_cpus, err);
	if (ret < 0) {
		if (r.ic.seized)
			infect_detach(&r.ic, &(struct ferry_err){0});
		kill_all(&r);
		goto out;
	}
	res->pid = r.pid;
	res->uffd = steal_fd(&r.uffd);
	res->lazy_pages = r.lazy_pages;
	res->waitee = r.init_pid ? r.init_pid : r.pid;
	res->ms = (mono_ns() - r.t0 - r.zombie_wait_ns) / 1e6;
	pr_info("pid %d restored in %.2f ms", r.pid, res->ms);
out:
	restore_verify_wait(&r, &(struct ferry_err){0});
	if (r.uffd >= 0)
		close(r.uffd);
	sched_setaffinity(0, sizeof(orig_cpus), &orig_cpus);
	if (r.ready[0] >= 0)
		close(r.ready[0]);
	if (r.tty_fd >= 0)
		close(r.tty_fd);
	restore_free(&r);
	return ret;
}
