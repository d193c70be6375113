/*
 * Process state by injected system calls, in this order: signal handlers,
 * altstack, pending signals (all signals are still blocked), itimers, the mm
 * fields (PR_SET_MM_MAP, with the executable), clear_child_tid and robust
 * list, rseq, credentials last and then what a credential change resets
 * (dumpable, pdeath signal). Arguments that are structs go through the
 * scratch area.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "core/log.h"
#include "core/util.h"
#include "restore/internal.h"

#define SCR_ARG 0 /* struct arguments */
#define SCR_AUXV 2048
#define SCRATCH_AUXV_MAX 4096

static int put(struct restore_ctx *r, uint64_t off, const void *p, size_t len,
	       struct ferry_err *err)
{
	return infect_write(&r->ic, r->ic.scratch + off, p, len, err);
}

static int restore_sigactions(struct restore_ctx *r, struct ferry_err *err)
{
	for (size_t i = 0; i < r->task->n_sigactions; i++) {
		const Sigaction *s = r->task->sigactions[i];
		struct {
			uint64_t handler, flags, restorer, mask;
		} k = {s->handler, s->flags, s->restorer, s->mask};
		if (s->sig < 1 || s->sig > 64 || s->sig == SIGKILL || s->sig == SIGSTOP)
			continue;
		int ret = put(r, SCR_ARG, &k, sizeof(k), err);
		if (ret == 0)
			ret = infect_syscall_ok(&r->ic, "set signal action", __NR_rt_sigaction, NULL,
						s->sig, r->ic.scratch + SCR_ARG, 0, 8, 0, 0, err);
		if (ret < 0)
			return ferry_wrap(err, "signal %u", s->sig);
	}
	return 0;
}

static int queue_signal(struct restore_ctx *r, const Siginfo *s, bool thread,
			struct ferry_err *err)
{
	siginfo_t si;
	pid_t pid = r->pe->pid; /* as the process sees itself */
	int ret;

	if (s->raw.len != sizeof(si) || s->sig < 1 || s->sig > 64)
		return ferry_fail(err, EINVAL, "malformed pending signal %u", s->sig);
	memcpy(&si, s->raw.data, sizeof(si));
	ret = put(r, SCR_ARG, &si, sizeof(si), err);
	if (ret < 0)
		return ret;
	if (thread)
		return infect_syscall_ok(&r->ic, "queue a pending signal", __NR_rt_tgsigqueueinfo,
					 NULL, pid, pid, s->sig, r->ic.scratch + SCR_ARG, 0, 0, err);
	return infect_syscall_ok(&r->ic, "queue a pending signal", __NR_rt_sigqueueinfo, NULL, pid,
				 s->sig, r->ic.scratch + SCR_ARG, 0, 0, 0, err);
}

static int restore_signals(struct restore_ctx *r, struct ferry_err *err)
{
	const ThreadCore *c = r->core;
	int ret = restore_sigactions(r, err);

	if (ret == 0 && c->has_altstack_flags && !(c->altstack_flags & SS_DISABLE)) {
		stack_t ss = {.ss_sp = (void *)c->altstack_sp,
			      .ss_flags = (int)(c->altstack_flags & ~SS_ONSTACK),
			      .ss_size = c->altstack_size};
		ret = put(r, SCR_ARG, &ss, sizeof(ss), err);
		if (ret == 0)
			ret = infect_syscall_ok(&r->ic, "set sigaltstack", __NR_sigaltstack, NULL,
						r->ic.scratch + SCR_ARG, 0, 0, 0, 0, 0, err);
	}
	for (size_t i = 0; i < r->task->n_shared_pending && ret == 0; i++)
		ret = queue_signal(r, r->task->shared_pending[i], false, err);
	for (size_t i = 0; i < c->n_pending && ret == 0; i++)
		ret = queue_signal(r, c->pending[i], true, err);
	return ret;
}

static int restore_itimers(struct restore_ctx *r, struct ferry_err *err)
{
	for (size_t i = 0; i < r->task->n_itimers; i++) {
		const Itimer *t = r->task->itimers[i];
		struct itimerval v = {
			.it_interval = {t->interval_us / 1000000, t->interval_us % 1000000},
			.it_value = {t->value_us / 1000000, t->value_us % 1000000},
		};
		if (t->which > 2)
			return ferry_fail(err, EINVAL, "malformed itimer %u", t->which);
		int ret = put(r, SCR_ARG, &v, sizeof(v), err);
		if (ret == 0)
			ret = infect_syscall_ok(&r->ic, "set itimer", __NR_setitimer, NULL, t->which,
						r->ic.scratch + SCR_ARG, 0, 0, 0, 0, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int restore_mm_fields(struct restore_ctx *r, struct ferry_err *err)
{
	const Mm *mm = r->mm;
	struct prctl_mm_map map = {
		.start_code = mm->start_code,
		.end_code = mm->end_code,
		.start_data = mm->start_data,
		.end_data = mm->end_data,
		.start_brk = mm->start_brk,
		.brk = mm->brk,
		.start_stack = mm->start_stack,
		.arg_start = mm->arg_start,
		.arg_end = mm->arg_end,
		.env_start = mm->env_start,
		.env_end = mm->env_end,
		.auxv = (__u64 *)(r->ic.scratch + SCR_AUXV),
		.auxv_size = mm->n_auxv * sizeof(uint64_t),
		.exe_fd = mm->has_exe_file ? (uint32_t)helper_file_fd(r, mm->exe_file) : (uint32_t)-1,
	};
	int ret;

	if (map.auxv_size > SCRATCH_AUXV_MAX)
		return ferry_fail(err, EINVAL, "auxv of %u bytes is too large", map.auxv_size);
	ret = put(r, SCR_AUXV, mm->auxv, map.auxv_size, err);
	if (ret == 0)
		ret = put(r, SCR_ARG, &map, sizeof(map), err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set the mm fields (PR_SET_MM_MAP)", __NR_prctl, NULL,
					PR_SET_MM, PR_SET_MM_MAP, r->ic.scratch + SCR_ARG,
					sizeof(map), 0, 0, err);
	return ret;
}

static int restore_thread_bits(struct restore_ctx *r, struct ferry_err *err)
{
	const ThreadCore *c = r->core;
	int ret = 0;

	if (c->has_clear_child_tid)
		ret = infect_syscall_ok(&r->ic, "set clear_child_tid", __NR_set_tid_address, NULL,
					c->clear_child_tid, 0, 0, 0, 0, 0, err);
	if (ret == 0 && c->has_robust_list && c->robust_list)
		ret = infect_syscall_ok(&r->ic, "set robust list", __NR_set_robust_list, NULL,
					c->robust_list, c->robust_list_len, 0, 0, 0, 0, err);
	if (ret == 0 && c->rseq && c->rseq->addr)
		ret = infect_syscall_ok(&r->ic, "register rseq", __NR_rseq, NULL, c->rseq->addr,
					c->rseq->len, 0, c->rseq->sig, 0, 0, err);
	return ret;
}

static bool creds_are_root(const Creds *c)
{
	for (size_t i = 0; i < c->n_uid; i++)
		if (c->uid[i])
			return false;
	for (size_t i = 0; i < c->n_gid; i++)
		if (c->gid[i])
			return false;
	return true;
}

static int restore_creds(struct restore_ctx *r, struct ferry_err *err)
{
	const Creds *c = r->task->creds;
	int ret;

	if (c->n_uid != 4 || c->n_gid != 4 || c->n_groups > 256)
		return ferry_fail(err, EINVAL, "malformed credentials in the task image");
	ret = put(r, SCR_ARG, c->groups, c->n_groups * sizeof(uint32_t), err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set groups", __NR_setgroups, NULL, c->n_groups,
					r->ic.scratch + SCR_ARG, 0, 0, 0, 0, err);
	/* securebits need CAP_SETPCAP: while still root */
	if (ret == 0 && c->has_securebits && c->securebits)
		ret = infect_syscall_ok(&r->ic, "set securebits", __NR_prctl, NULL,
					PR_SET_SECUREBITS, c->securebits, 0, 0, 0, 0, err);
	if (ret < 0 || creds_are_root(c))
		goto caps;
	/* keep capabilities across the uid change, then set them exactly */
	ret = infect_syscall_ok(&r->ic, "keep caps", __NR_prctl, NULL, PR_SET_KEEPCAPS, 1, 0, 0, 0,
				0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set gids", __NR_setresgid, NULL, c->gid[0],
					c->gid[1], c->gid[2], 0, 0, 0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set fsgid", __NR_setfsgid, NULL, c->gid[3], 0, 0, 0,
					0, 0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set uids", __NR_setresuid, NULL, c->uid[0],
					c->uid[1], c->uid[2], 0, 0, 0, err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set fsuid", __NR_setfsuid, NULL, c->uid[3], 0, 0, 0,
					0, 0, err);
	if (ret < 0)
		return ret;
caps:;
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh},
		{(uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32),
		 (uint32_t)(c->cap_inh >> 32)},
	};
	ret = put(r, SCR_ARG, &hdr, sizeof(hdr), err);
	if (ret == 0)
		ret = put(r, SCR_ARG + 64, data, sizeof(data), err);
	if (ret == 0)
		ret = infect_syscall_ok(&r->ic, "set capabilities", __NR_capset, NULL,
					r->ic.scratch + SCR_ARG, r->ic.scratch + SCR_ARG + 64, 0, 0,
					0, 0, err);
	if (ret == 0 && !creds_are_root(c))
		ret = infect_syscall_ok(&r->ic, "reset keep caps", __NR_prctl, NULL,
					PR_SET_KEEPCAPS, 0, 0, 0, 0, 0, err);
	if (ret == 0 && c->has_no_new_privs && c->no_new_privs)
		ret = infect_syscall_ok(&r->ic, "set no_new_privs", __NR_prctl, NULL,
					PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0, err);
	return ret;
}

/* What changing credentials resets, set again afterwards. */
static int restore_after_creds(struct restore_ctx *r, struct ferry_err *err)
{
	const TaskCore *t = r->task;
	int ret = 0;

	if (t->has_dumpable)
		ret = infect_syscall_ok(&r->ic, "set dumpable", __NR_prctl, NULL, PR_SET_DUMPABLE,
					t->dumpable, 0, 0, 0, 0, err);
	if (ret == 0 && t->has_pdeath_sig && t->pdeath_sig)
		ret = infect_syscall_ok(&r->ic, "set pdeath signal", __NR_prctl, NULL,
					PR_SET_PDEATHSIG, t->pdeath_sig, 0, 0, 0, 0, err);
	if (ret == 0 && t->has_child_subreaper && t->child_subreaper)
		ret = infect_syscall_ok(&r->ic, "set child subreaper", __NR_prctl, NULL,
					PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0, err);
	return ret;
}

int restore_task(struct restore_ctx *r, struct ferry_err *err)
{
	int ret = restore_signals(r, err);

	if (ret == 0)
		ret = restore_itimers(r, err);
	if (ret == 0)
		ret = restore_mm_fields(r, err);
	if (ret == 0)
		ret = restore_thread_bits(r, err);
	if (ret == 0)
		ret = restore_rlimits(r, err);
	if (ret == 0)
		ret = restore_creds(r, err);
	if (ret == 0)
		ret = restore_after_creds(r, err);
	return ret;
}
