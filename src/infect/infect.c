#include "infect/infect.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/proc.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

static int wait_stop(pid_t pid, int *status, struct ferry_err *err)
{
	for (;;) {
		pid_t r = waitpid(pid, status, __WALL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ferry_fail_errno(err, "wait for pid %d", pid);
		}
		if (WIFEXITED(*status))
			return ferry_refuse(err, ESRCH, "pid %d exited with status %d", pid,
					  WEXITSTATUS(*status));
		if (WIFSIGNALED(*status))
			return ferry_refuse(err, ESRCH, "pid %d was killed by signal %d", pid,
					  WTERMSIG(*status));
		return 0;
	}
}

/* A signal-delivery stop: take the signal away and remember it to queue it again. */
static int hold_signal(struct infect *ic, int sig, struct ferry_err *err)
{
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, ic->pid, 0, &si) < 0)
		return ferry_fail_errno(err, "pid %d: read siginfo of signal %d", ic->pid, sig);
	if (ic->have_sig)
		return ferry_fail(err, EAGAIN,
				  "pid %d: a second signal (%d) arrived while frozen, try again",
				  ic->pid, sig);
	ic->sig = si;
	ic->have_sig = true;
	pr_debug("pid %d: holding signal %d dequeued while seizing", ic->pid, sig);
	return 0;
}

int infect_seize(pid_t pid, struct infect *ic, struct ferry_err *err)
{
	struct proc_status st;
	int status, r;

	memset(ic, 0, sizeof(*ic));
	ic->pid = pid;
	if (pid == getpid())
		return ferry_fail(err, EINVAL, "pid %d is ferry itself", pid);
	r = proc_parse_status(pid, &st, err);
	if (r < 0)
		return r == -ENOENT ? ferry_refuse(err, ESRCH, "no process with pid %d", pid) : r;
	if (st.tracer_pid)
		return ferry_refuse(err, EBUSY, "pid %d is already traced by pid %d", pid,
				  st.tracer_pid);
	if (st.state == 'T' || st.state == 't')
		return ferry_refuse(err, EBUSY, "pid %d is stopped (state %c); continue it first", pid,
				  st.state);
	if (st.state == 'Z' || st.state == 'X')
		return ferry_refuse(err, ESRCH, "pid %d is a zombie", pid);
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD) < 0) {
		if (errno == ESRCH)
			return ferry_refuse(err, ESRCH, "no process with pid %d", pid);
		return ferry_fail_errno(err, "seize pid %d", pid);
	}
	ic->seized = true;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
		r = ferry_fail_errno(err, "interrupt pid %d", pid);
		goto fail;
	}
	for (;;) {
		r = wait_stop(pid, &status, err);
		if (r < 0)
			goto fail;
		if (status >> 16 == PTRACE_EVENT_STOP)
			break;
		r = hold_signal(ic, WSTOPSIG(status), err);
		if (r < 0)
			goto fail;
		if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) {
			r = ferry_fail_errno(err, "continue pid %d", pid);
			goto fail;
		}
	}
	r = infect_get_regs(pid, &ic->saved, err);
	if (r < 0)
		goto fail;
	ic->xsave_len = sizeof(ic->xsave);
	r = infect_get_xstate(pid, ic->xsave, &ic->xsave_len, err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	ptrace(PTRACE_DETACH, pid, 0, 0);
	ic->seized = false;
	return r;
}

int infect_find_syscall_ip(struct infect *ic, uint64_t vdso, uint64_t len, struct ferry_err *err)
{
	_cleanup_free_ uint8_t *buf = len ? malloc(len) : NULL;
	int r;

	if (!len)
		return ferry_refuse(err, ENOENT, "pid %d has no [vdso]", ic->pid);
	if (!buf)
		return ferry_fail(err, ENOMEM, "vdso");
	r = infect_read(ic, vdso, buf, len, err);
	if (r < 0)
		return r;
	for (size_t j = 0; j + 1 < len; j++) {
		if (buf[j] == 0x0f && buf[j + 1] == 0x05) {
			ic->syscall_ip = vdso + j;
			return 0;
		}
	}
	return ferry_refuse(err, ENOENT, "pid %d has no syscall instruction in its [vdso]", ic->pid);
}

static int resume_to_syscall_stop(struct infect *ic, struct ferry_err *err)
{
	int status, r;

	if (ptrace(PTRACE_SYSCALL, ic->pid, 0, 0) < 0)
		return ferry_fail_errno(err, "pid %d: resume for syscall", ic->pid);
	for (;;) {
		r = wait_stop(ic->pid, &status, err);
		if (r < 0)
			return r;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if (status >> 16)
			return ferry_fail(err, EINTR, "pid %d: unexpected ptrace event %d", ic->pid,
					  status >> 16);
		r = hold_signal(ic, WSTOPSIG(status), err);
		if (r < 0)
			return r;
		if (ptrace(PTRACE_SYSCALL, ic->pid, 0, 0) < 0)
			return ferry_fail_errno(err, "pid %d: resume for syscall", ic->pid);
	}
}

int infect_syscall(struct infect *ic, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6,
		   struct ferry_err *err)
{
	struct user_regs_struct regs = ic->saved;
	int r;

	if (!ic->syscall_ip)
		return ferry_fail(err, EINVAL, "pid %d: no syscall instruction known", ic->pid);
	regs.rip = ic->syscall_ip;
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	r = infect_set_regs(ic->pid, &regs, err);
	if (r < 0)
		return r;
	r = resume_to_syscall_stop(ic, err); /* entry */
	if (r < 0)
		return ferry_wrap(err, "syscall %ld", nr);
	r = resume_to_syscall_stop(ic, err); /* exit */
	if (r < 0)
		return ferry_wrap(err, "syscall %ld", nr);
	errno = 0;
	long rax = ptrace(PTRACE_PEEKUSER, ic->pid, offsetof(struct user_regs_struct, rax), 0);
	if (rax == -1 && errno)
		return ferry_fail_errno(err, "pid %d: read syscall result", ic->pid);
	*ret = rax;
	pr_trace("pid %d: syscall %ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx) = %ld", ic->pid, nr, a1, a2,
		 a3, a4, a5, a6, rax);
	return 0;
}

int infect_syscall_ok(struct infect *ic, const char *what, long nr, long *ret, unsigned long a1,
		      unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5,
		      unsigned long a6, struct ferry_err *err)
{
	long v;
	int r = infect_syscall(ic, nr, &v, a1, a2, a3, a4, a5, a6, err);

	if (r < 0)
		return ferry_wrap(err, "%s", what);
	if (v < 0 && v > -4096)
		return ferry_fail(err, (int)-v, "pid %d: %s", ic->pid, what);
	if (ret)
		*ret = v;
	return 0;
}

int infect_scratch_map(struct infect *ic, size_t size, struct ferry_err *err)
{
	return infect_scratch_map_at(ic, 0, size, err);
}

int infect_scratch_map_at(struct infect *ic, uint64_t at, size_t size, struct ferry_err *err)
{
	long addr;
	int r;

	size = PAGE_ALIGN_UP(size);
	/* Shared anonymous memory never merges with the target's own mappings. */
	r = infect_syscall_ok(ic, "map scratch memory", __NR_mmap, &addr, at, size,
			      PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0), -1, 0,
			      err);
	if (r < 0)
		return r;
	ic->scratch = addr;
	ic->scratch_size = size;
	return 0;
}

int infect_scratch_on_stack(struct infect *ic, uint64_t lo, uint64_t hi, size_t size,
			    struct ferry_err *err)
{
	uint64_t sp = ic->saved.rsp, red_zone = 128;

	if (sp < lo + red_zone + size || sp > hi)
		return ferry_refuse(err, ENOSPC, "pid %d: no room for scratch below sp %#lx",
				    ic->pid, (unsigned long)sp);
	ic->scratch = (sp - red_zone - size) & ~63UL;
	ic->scratch_size = 0;
	return 0;
}

int infect_scratch_unmap(struct infect *ic, struct ferry_err *err)
{
	int r;

	if (!ic->scratch)
		return 0;
	if (!ic->scratch_size) { /* borrowed from the stack */
		ic->scratch = 0;
		return 0;
	}
	r = infect_syscall_ok(ic, "unmap scratch memory", __NR_munmap, NULL, ic->scratch,
			      ic->scratch_size, 0, 0, 0, 0, err);
	if (r == 0)
		ic->scratch = 0;
	return r;
}

static int mem_rw(struct infect *ic, uint64_t addr, void *buf, size_t len, bool write,
		  struct ferry_err *err)
{
	struct iovec local = {buf, len}, remote = {(void *)addr, len};
	ssize_t n;

	n = write ? process_vm_writev(ic->pid, &local, 1, &remote, 1, 0)
		  : process_vm_readv(ic->pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	/* Protected pages: /proc/PID/mem may access them (FOLL_FORCE). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", ic->pid);
	_cleanup_close_ int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return ferry_fail_errno(err, "open %s", path);
	int r = write ? pwrite_all(fd, buf, len, addr) : pread_all(fd, buf, len, addr);
	if (r < 0)
		return ferry_fail(err, -r, "pid %d: %s %zu bytes at %#lx", ic->pid,
				  write ? "write" : "read", len, (unsigned long)addr);
	return 0;
}

int infect_write(struct infect *ic, uint64_t addr, const void *buf, size_t len,
		 struct ferry_err *err)
{
	return mem_rw(ic, addr, (void *)buf, len, true, err);
}

int infect_read(struct infect *ic, uint64_t addr, void *buf, size_t len, struct ferry_err *err)
{
	return mem_rw(ic, addr, buf, len, false, err);
}

int infect_get_regs(pid_t pid, struct user_regs_struct *regs, struct ferry_err *err)
{
	if (ptrace(PTRACE_GETREGS, pid, 0, regs) < 0)
		return ferry_fail_errno(err, "pid %d: get registers", pid);
	return 0;
}

int infect_set_regs(pid_t pid, const struct user_regs_struct *regs, struct ferry_err *err)
{
	if (ptrace(PTRACE_SETREGS, pid, 0, regs) < 0)
		return ferry_fail_errno(err, "pid %d: set registers", pid);
	return 0;
}

int infect_get_xstate(pid_t pid, void *buf, size_t *len, struct ferry_err *err)
{
	struct iovec iov = {buf, *len};

	if (ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov) < 0)
		return ferry_fail_errno(err, "pid %d: get xsave state", pid);
	*len = iov.iov_len;
	return 0;
}

int infect_set_xstate(pid_t pid, const void *buf, size_t len, struct ferry_err *err)
{
	struct iovec iov = {(void *)buf, len};

	if (ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov) < 0)
		return ferry_fail_errno(err, "pid %d: set xsave state (%zu bytes)", pid, len);
	return 0;
}

void infect_fixup_restart(struct user_regs_struct *regs, bool keep_restart_block)
{
	if ((long)regs->orig_rax >= 0) {
		switch ((long)regs->rax) {
		case -ERESTARTSYS:
		case -ERESTARTNOINTR:
		case -ERESTARTNOHAND:
			regs->rax = regs->orig_rax;
			regs->rip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK:
			if (keep_restart_block) {
				regs->rax = __NR_restart_syscall;
				regs->rip -= 2;
			} else {
				regs->rax = -EINTR;
			}
			break;
		}
	}
	regs->orig_rax = -1;
}

static int requeue_signal(struct infect *ic, struct ferry_err *err)
{
	bool temp = !ic->scratch;
	int r;

	if (!ic->have_sig)
		return 0;
	if (temp && (r = infect_scratch_map(ic, PAGE_SIZE, err)) < 0)
		return r;
	r = infect_write(ic, ic->scratch, &ic->sig, sizeof(ic->sig), err);
	if (r == 0)
		r = infect_syscall_ok(ic, "queue the held signal again", __NR_rt_tgsigqueueinfo,
				      NULL, ic->pid, ic->pid, ic->sig.si_signo, ic->scratch, 0, 0,
				      err);
	if (r == 0)
		ic->have_sig = false;
	if (temp) {
		struct ferry_err e2;
		infect_scratch_unmap(ic, &e2);
	}
	return r;
}

int infect_cure(struct infect *ic, struct ferry_err *err)
{
	struct ferry_err e2;
	int r = 0, r2;

	if (!ic->seized)
		return 0;
	if (ic->syscall_ip) {
		r = requeue_signal(ic, err);
		r2 = infect_scratch_unmap(ic, r ? &e2 : err);
		if (!r)
			r = r2;
	}
	struct user_regs_struct regs = ic->saved;
	infect_fixup_restart(&regs, true);
	r2 = infect_set_regs(ic->pid, &regs, r ? &e2 : err);
	if (!r)
		r = r2;
	if (ptrace(PTRACE_DETACH, ic->pid, 0, 0) < 0 && !r)
		r = ferry_fail_errno(err, "detach pid %d", ic->pid);
	ic->seized = false;
	return r;
}

int infect_detach(struct infect *ic, struct ferry_err *err)
{
	if (!ic->seized)
		return 0;
	ic->seized = false;
	if (ptrace(PTRACE_DETACH, ic->pid, 0, 0) < 0)
		return ferry_fail_errno(err, "detach pid %d", ic->pid);
	return 0;
}

int infect_get_rseq(pid_t pid, struct rseq_conf *rc, struct ferry_err *err)
{
	struct {
		uint64_t addr;
		uint32_t len;
		uint32_t sig;
		uint32_t flags;
		uint32_t pad;
	} c;
	long n;

	memset(&c, 0, sizeof(c));
	n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(c), &c);
	if (n < 0)
		return ferry_fail_errno(err, "pid %d: read rseq configuration", pid);
	rc->addr = c.addr;
	rc->len = c.len;
	rc->sig = c.sig;
	rc->flags = c.flags;
	rc->registered = c.addr != 0;
	return 0;
}

uint64_t infect_host_xfeatures(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}
