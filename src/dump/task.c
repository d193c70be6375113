/*
 * Process and thread state: identity, credentials, limits, signals, timers,
 * registers. What /proc and ptrace do not show is asked from the target with
 * injected system calls whose results land in the scratch page:
 *
 *   scratch + 0     struct kernel_sigaction[64]
 *   scratch + 2048  stack_t (sigaltstack)
 *   scratch + 2112  struct itimerval[3]
 *   scratch + 2240  int (PR_GET_PDEATHSIG), then u64 (PR_GET_TID_ADDRESS)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "dump/internal.h"

#define SCR_SIGACT 0
#define SCR_ALTSTACK 2048
#define SCR_ITIMER 2112
#define SCR_PDEATH 2240
#define SCR_TIDADDR 2248

struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

struct peeksiginfo_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

static int dump_creds(struct dump_ctx *d, struct ferry_err *err)
{
	Creds *c = dz_alloc(d, sizeof(*c));
	long secbits;
	int r;

	if (!c)
		return ferry_fail(err, ENOMEM, "creds");
	creds__init(c);
	c->n_uid = 4;
	c->uid = dz_alloc(d, 4 * sizeof(uint32_t));
	c->n_gid = 4;
	c->gid = dz_alloc(d, 4 * sizeof(uint32_t));
	c->n_groups = d->st.ngroups;
	c->groups = dz_alloc(d, (d->st.ngroups + 1) * sizeof(uint32_t));
	if (!c->uid || !c->gid || !c->groups)
		return ferry_fail(err, ENOMEM, "creds");
	memcpy(c->uid, d->st.uid, 4 * sizeof(uint32_t));
	memcpy(c->gid, d->st.gid, 4 * sizeof(uint32_t));
	memcpy(c->groups, d->st.groups, d->st.ngroups * sizeof(uint32_t));
	c->cap_inh = d->st.cap_inh;
	c->cap_prm = d->st.cap_prm;
	c->cap_eff = d->st.cap_eff;
	c->cap_bnd = d->st.cap_bnd;
	c->has_cap_amb = true;
	c->cap_amb = d->st.cap_amb;
	c->has_no_new_privs = true;
	c->no_new_privs = d->st.no_new_privs;
	r = infect_syscall_ok(&d->ic, "read securebits", __NR_prctl, &secbits, PR_GET_SECUREBITS, 0,
			      0, 0, 0, 0, err);
	if (r < 0)
		return r;
	c->has_securebits = true;
	c->securebits = secbits;
	d->task.creds = c;
	return 0;
}

/* /proc/PID/limits: "%-25s %-20s %-20s %-10s" per resource, in RLIMIT_* order. */
static int read_limits_file(struct dump_ctx *d, struct rlimit *out, struct ferry_err *err)
{
	char path[64], *text = NULL;
	int r, res = 0;

	snprintf(path, sizeof(path), "/proc/%d/limits", d->pid);
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	char *line = strchr(text, '\n'); /* skip the header */
	while (line && res < RLIM_NLIMITS) {
		line++;
		if (strlen(line) < 47)
			break;
		char soft[24], hard[24];
		if (sscanf(line + 26, "%23s %23s", soft, hard) != 2)
			break;
		out[res].rlim_cur = strcmp(soft, "unlimited") ? strtoull(soft, NULL, 10) : RLIM_INFINITY;
		out[res].rlim_max = strcmp(hard, "unlimited") ? strtoull(hard, NULL, 10) : RLIM_INFINITY;
		res++;
		line = strchr(line, '\n');
	}
	free(text);
	if (res != RLIM_NLIMITS)
		return ferry_refuse(err, EINVAL, "%s: cannot parse (%d limits read)", path, res);
	return 0;
}

static int dump_rlimits(struct dump_ctx *d, struct ferry_err *err)
{
	struct rlimit all[RLIM_NLIMITS];
	bool from_file = false;

	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit rl;
		if (!from_file && prlimit(d->pid, res, NULL, &rl) < 0) {
			/* another user's process: prlimit needs CAP_SYS_RESOURCE */
			int e = read_limits_file(d, all, err);
			if (e < 0)
				return ferry_wrap(err, "pid %d: read rlimits", d->pid);
			from_file = true;
		}
		if (from_file)
			rl = all[res];
		Rlimit *m = dz_alloc(d, sizeof(*m));
		if (!m)
			return ferry_fail(err, ENOMEM, "rlimits");
		rlimit__init(m);
		m->resource = res;
		m->cur = rl.rlim_cur;
		m->max = rl.rlim_max;
		if (dz_push(d, (void ***)&d->task.rlimits, &d->task.n_rlimits, m) < 0)
			return ferry_fail(err, ENOMEM, "rlimits");
	}
	return 0;
}

static int dump_sigactions(struct dump_ctx *d, struct ferry_err *err)
{
	uint64_t wanted = d->st.sig_cgt | d->st.sig_ign;
	struct ksigaction acts[64];
	int r;

	for (int sig = 1; sig <= 64; sig++) {
		if (!(wanted & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		r = infect_syscall_ok(&d->ic, "read signal action", __NR_rt_sigaction, NULL, sig, 0,
				      d->ic.scratch + SCR_SIGACT + (sig - 1) * sizeof(acts[0]), 8,
				      0, 0, err);
		if (r < 0)
			return ferry_wrap(err, "signal %d", sig);
	}
	r = infect_read(&d->ic, d->ic.scratch + SCR_SIGACT, acts, sizeof(acts), err);
	if (r < 0)
		return r;
	for (int sig = 1; sig <= 64; sig++) {
		if (!(wanted & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		Sigaction *m = dz_alloc(d, sizeof(*m));
		if (!m)
			return ferry_fail(err, ENOMEM, "sigactions");
		sigaction__init(m);
		m->sig = sig;
		m->handler = acts[sig - 1].handler;
		m->flags = acts[sig - 1].flags;
		m->restorer = acts[sig - 1].restorer;
		m->mask = acts[sig - 1].mask;
		if (dz_push(d, (void ***)&d->task.sigactions, &d->task.n_sigactions, m) < 0)
			return ferry_fail(err, ENOMEM, "sigactions");
	}
	return 0;
}

static int push_siginfo(struct dump_ctx *d, Siginfo ***arr, size_t *n, const siginfo_t *si,
			struct ferry_err *err)
{
	Siginfo *m = dz_alloc(d, sizeof(*m));
	void *raw = dz_alloc(d, sizeof(*si));

	if (!m || !raw)
		return ferry_fail(err, ENOMEM, "pending signals");
	siginfo__init(m);
	memcpy(raw, si, sizeof(*si));
	m->sig = si->si_signo;
	m->raw.data = raw;
	m->raw.len = sizeof(*si);
	if (dz_push(d, (void ***)arr, n, m) < 0)
		return ferry_fail(err, ENOMEM, "pending signals");
	return 0;
}

/* Pending signals, read from the queues without dequeuing them. */
static int dump_pending(struct dump_ctx *d, bool shared, Siginfo ***arr, size_t *n,
			struct ferry_err *err)
{
	siginfo_t si[32];
	struct peeksiginfo_args a = {.off = 0, .flags = shared ? 1 : 0, .nr = 32};

	for (;;) {
		long got = ptrace(PTRACE_PEEKSIGINFO, d->pid, &a, si);
		if (got < 0)
			return ferry_fail_errno(err, "pid %d: read pending signals", d->pid);
		if (got == 0)
			return 0;
		for (long i = 0; i < got; i++) {
			int r = push_siginfo(d, arr, n, &si[i], err);
			if (r < 0)
				return r;
		}
		a.off += got;
	}
}

static int dump_itimers(struct dump_ctx *d, struct ferry_err *err)
{
	struct itimerval it[3];
	int r;

	for (int which = 0; which < 3; which++) {
		r = infect_syscall_ok(&d->ic, "read itimer", __NR_getitimer, NULL, which,
				      d->ic.scratch + SCR_ITIMER + which * sizeof(it[0]), 0, 0, 0,
				      0, err);
		if (r < 0)
			return r;
	}
	r = infect_read(&d->ic, d->ic.scratch + SCR_ITIMER, it, sizeof(it), err);
	if (r < 0)
		return r;
	for (int which = 0; which < 3; which++) {
		if (!it[which].it_value.tv_sec && !it[which].it_value.tv_usec)
			continue;
		Itimer *m = dz_alloc(d, sizeof(*m));
		if (!m)
			return ferry_fail(err, ENOMEM, "itimers");
		itimer__init(m);
		m->which = which;
		m->interval_us = it[which].it_interval.tv_sec * 1000000ULL +
				 it[which].it_interval.tv_usec;
		m->value_us = it[which].it_value.tv_sec * 1000000ULL + it[which].it_value.tv_usec;
		if (dz_push(d, (void ***)&d->task.itimers, &d->task.n_itimers, m) < 0)
			return ferry_fail(err, ENOMEM, "itimers");
	}
	return 0;
}

static int read_link(struct dump_ctx *d, const char *what, char **out, struct ferry_err *err)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", d->pid, what);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return ferry_fail_errno(err, "readlink %s", path);
	buf[n] = '\0';
	*out = dz_strdup(d, buf);
	return *out ? 0 : ferry_fail(err, ENOMEM, "%s", what);
}

static int dump_misc(struct dump_ctx *d, struct ferry_err *err)
{
	char path[64], *text = NULL;
	long v;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/personality", d->pid);
	r = read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	d->task.personality = strtoul(text, NULL, 16);
	free(text);
	d->task.umask = d->st.umask;
	d->task.comm = dz_strdup(d, d->st.name);
	r = read_link(d, "cwd", &d->task.cwd, err);
	if (r == 0)
		r = read_link(d, "root", &d->task.root, err);
	if (r < 0)
		return r;
	r = infect_syscall_ok(&d->ic, "read pdeath signal", __NR_prctl, NULL, PR_GET_PDEATHSIG,
			      d->ic.scratch + SCR_PDEATH, 0, 0, 0, 0, err);
	if (r < 0)
		return r;
	int pdeath = 0;
	r = infect_read(&d->ic, d->ic.scratch + SCR_PDEATH, &pdeath, sizeof(pdeath), err);
	if (r < 0)
		return r;
	d->task.has_pdeath_sig = true;
	d->task.pdeath_sig = pdeath;
	r = infect_syscall_ok(&d->ic, "read dumpable", __NR_prctl, &v, PR_GET_DUMPABLE, 0, 0, 0, 0,
			      0, err);
	if (r < 0)
		return r;
	d->task.has_dumpable = true;
	d->task.dumpable = v;
	r = infect_syscall_ok(&d->ic, "read child subreaper", __NR_prctl, NULL,
			      PR_GET_CHILD_SUBREAPER, d->ic.scratch + SCR_PDEATH, 0, 0, 0, 0, err);
	if (r < 0)
		return r;
	r = infect_read(&d->ic, d->ic.scratch + SCR_PDEATH, &pdeath, sizeof(pdeath), err);
	if (r < 0)
		return r;
	d->task.has_child_subreaper = true;
	d->task.child_subreaper = pdeath != 0;
	d->task.has_exit_signal = true;
	d->task.exit_signal = d->stat.exit_signal;
	return 0;
}

/* If the thread is inside an rseq critical section, move it to the abort handler. */
static int rseq_fixup(struct dump_ctx *d, struct user_regs_struct *regs, const struct rseq_conf *rc,
		      struct ferry_err *err)
{
	struct {
		uint32_t version, flags;
		uint64_t start_ip, post_commit_offset, abort_ip;
	} cs;
	uint64_t cs_ptr;
	int r;

	if (!rc->registered)
		return 0;
	r = infect_read(&d->ic, rc->addr + 8, &cs_ptr, sizeof(cs_ptr), err);
	if (r < 0 || !cs_ptr)
		return r;
	r = infect_read(&d->ic, cs_ptr, &cs, sizeof(cs), err);
	if (r < 0)
		return r;
	if (regs->rip >= cs.start_ip && regs->rip < cs.start_ip + cs.post_commit_offset) {
		pr_info("pid %d: in an rseq critical section at %#llx, moved to abort %#lx", d->pid,
			regs->rip, (unsigned long)cs.abort_ip);
		regs->rip = cs.abort_ip;
	}
	return 0;
}

static int dump_thread(struct dump_ctx *d, struct ferry_err *err)
{
	ThreadCore *c = &d->core;
	struct user_regs_struct regs = d->ic.saved;
	struct rseq_conf rc;
	stack_t ss;
	uint64_t tidaddr = 0, head = 0;
	size_t len = 0;
	int r;

	c->tid = d->ns_pid;
	c->has_syscall_nr = true;
	c->syscall_nr = (long)regs.orig_rax;
	c->has_syscall_ret = true;
	c->syscall_ret = (long)regs.rax;
	r = infect_get_rseq(d->pid, &rc, err);
	if (r < 0)
		return r;
	r = rseq_fixup(d, &regs, &rc, err);
	if (r < 0)
		return r;
	infect_fixup_restart(&regs, false);
	c->gpregs.data = dz_alloc(d, sizeof(regs));
	c->xsave.data = dz_alloc(d, d->ic.xsave_len);
	if (!c->gpregs.data || !c->xsave.data)
		return ferry_fail(err, ENOMEM, "thread core");
	memcpy(c->gpregs.data, &regs, sizeof(regs));
	c->gpregs.len = sizeof(regs);
	memcpy(c->xsave.data, d->ic.xsave, d->ic.xsave_len);
	c->xsave.len = d->ic.xsave_len;
	/* not /proc's SigBlk: inside sigsuspend or ppoll that is the temporary mask;
	 * the injected syscalls have since put the real one back */
	if (ptrace(PTRACE_GETSIGMASK, d->pid, sizeof(c->blocked), &c->blocked) < 0)
		return ferry_fail_errno(err, "pid %d: read signal mask", d->pid);
	if (rc.registered) {
		c->rseq = dz_alloc(d, sizeof(Rseq));
		if (!c->rseq)
			return ferry_fail(err, ENOMEM, "rseq");
		rseq__init(c->rseq);
		c->rseq->addr = rc.addr;
		c->rseq->len = rc.len;
		c->rseq->flags = rc.flags;
		c->rseq->sig = rc.sig;
	}
	r = dump_pending(d, false, &c->pending, &c->n_pending, err);
	if (r == 0 && d->ic.have_sig)
		r = push_siginfo(d, &c->pending, &c->n_pending, &d->ic.sig, err);
	if (r < 0)
		return r;
	r = infect_syscall_ok(&d->ic, "read sigaltstack", __NR_sigaltstack, NULL, 0,
			      d->ic.scratch + SCR_ALTSTACK, 0, 0, 0, 0, err);
	if (r == 0)
		r = infect_read(&d->ic, d->ic.scratch + SCR_ALTSTACK, &ss, sizeof(ss), err);
	if (r < 0)
		return r;
	c->has_altstack_sp = c->has_altstack_size = c->has_altstack_flags = true;
	c->altstack_sp = (uint64_t)ss.ss_sp;
	c->altstack_size = ss.ss_size;
	c->altstack_flags = ss.ss_flags;
	r = infect_syscall_ok(&d->ic, "read clear_child_tid", __NR_prctl, NULL, PR_GET_TID_ADDRESS,
			      d->ic.scratch + SCR_TIDADDR, 0, 0, 0, 0, err);
	if (r == 0)
		r = infect_read(&d->ic, d->ic.scratch + SCR_TIDADDR, &tidaddr, sizeof(tidaddr), err);
	if (r < 0)
		return r;
	c->has_clear_child_tid = true;
	c->clear_child_tid = tidaddr;
	if (syscall(SYS_get_robust_list, d->pid, &head, &len) == 0) {
		c->has_robust_list = c->has_robust_list_len = true;
		c->robust_list = head;
		c->robust_list_len = len;
	}
	c->comm = dz_strdup(d, d->st.name);
	return 0;
}

int dump_task(struct dump_ctx *d, struct ferry_err *err)
{
	int r;

	d->task.pid = d->ns_pid;
	r = dump_creds(d, err);
	if (r == 0)
		r = dump_rlimits(d, err);
	if (r == 0)
		r = dump_sigactions(d, err);
	if (r == 0)
		r = dump_pending(d, true, &d->task.shared_pending, &d->task.n_shared_pending, err);
	if (r == 0)
		r = dump_itimers(d, err);
	if (r == 0)
		r = dump_misc(d, err);
	if (r == 0)
		r = dump_thread(d, err);
	return r;
}
