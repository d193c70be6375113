/*
 * signals: handlers, masks, an alternate stack and signals left pending.
 *
 *   signals OUTFILE
 *
 * Set up:
 *   SIGUSR1      handler, SA_SIGINFO|SA_RESTART
 *   SIGHUP       handler, SA_ONSTACK, with a 64 KiB sigaltstack
 *   SIGRTMIN+1   handler, SA_SIGINFO, sa_mask {SIGPIPE, SIGWINCH, SIGRTMIN+5}
 *   SIGTERM      handler, SA_SIGINFO
 *   SIGINT       ignored
 *   blocked      {SIGUSR1, SIGRTMIN+1, SIGTERM}
 *   pending      SIGUSR1 from sigqueue with value 111 (process-wide), SIGRTMIN+1
 *                queued twice with values 7 and 8, SIGTERM from tgkill (this
 *                thread only)
 *
 * On SIGUSR2: every signal's disposition (raw rt_sigaction: handler, flags,
 * restorer, mask) is what it was, the specific settings above hold, the
 * alternate stack, blocked mask and pending sets are the same (thread and
 * process pending told apart by SigPnd/ShdPnd in /proc/self/status). Then the
 * signals are unblocked one at a time: SIGUSR1 must arrive with 111 and
 * SI_QUEUE, SIGRTMIN+1 twice with 7 then 8 and its sa_mask blocked while it
 * runs, SIGTERM with SI_TKILL; SIGHUP raised then must run on the alternate
 * stack, SIGINT raised must be ignored.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wl.h"

#define ALT_SIZE (64 * 1024)
#define NSIG_ALL 64

struct raw_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct raw_sigaction dispositions[NSIG_ALL + 1];
static uint64_t blocked_at_ready, pending_at_ready;
static void *altstack;

static volatile int usr1_runs, usr1_value, usr1_code, usr1_pid;
static volatile int rt_runs, rt_values[4], rt_codes[4];
static volatile int rt_mask_ok = 1;
static volatile int term_runs, term_code, term_pid;
static volatile int hup_runs, hup_on_altstack, hup_ss_flags;

static int rt1(void)
{
	return SIGRTMIN + 1;
}

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

static uint64_t raw_blocked(void)
{
	uint64_t mask = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, 8);
	return mask;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	usr1_runs++;
	usr1_value = si->si_value.sival_int;
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	uint64_t want = bit(SIGPIPE) | bit(SIGWINCH) | bit(SIGRTMIN + 5) | bit(sig);

	if ((raw_blocked() & want) != want)
		rt_mask_ok = 0;
	if (rt_runs < 4) {
		rt_values[rt_runs] = si->si_value.sival_int;
		rt_codes[rt_runs] = si->si_code;
	}
	rt_runs++;
}

static void on_term(int sig, siginfo_t *si, void *uc)
{
	term_runs++;
	term_code = si->si_code;
	term_pid = si->si_pid;
}

static void on_hup(int sig)
{
	char here;
	stack_t ss;

	hup_runs++;
	hup_on_altstack = &here >= (char *)altstack && &here < (char *)altstack + ALT_SIZE;
	if (sigaltstack(NULL, &ss) == 0)
		hup_ss_flags = ss.ss_flags;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), void (*plain)(int), int flags,
		    const int *mask_sigs)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	if (fn)
		sa.sa_sigaction = fn;
	else
		sa.sa_handler = plain;
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, NULL))
		wl_setup_fail("sigaction %d: %s", sig, strerror(errno));
}

static uint64_t status_mask(const char *field)
{
	char value[64];

	if (!wl_status_field(field, value, sizeof(value)))
		return ~0ULL;
	return strtoull(value, NULL, 16);
}

static void setup(void)
{
	const int rt_mask[] = {SIGPIPE, SIGWINCH, SIGRTMIN + 5, 0};
	stack_t ss;
	sigset_t block;

	altstack = malloc(ALT_SIZE);
	if (!altstack)
		wl_setup_fail("malloc");
	ss.ss_sp = altstack;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		wl_setup_fail("sigaltstack: %s", strerror(errno));

	install(SIGUSR1, on_usr1, NULL, SA_SIGINFO | SA_RESTART, NULL);
	install(SIGHUP, NULL, on_hup, SA_ONSTACK, NULL);
	install(rt1(), on_rt, NULL, SA_SIGINFO, rt_mask);
	install(SIGTERM, on_term, NULL, SA_SIGINFO, NULL);
	install(SIGINT, NULL, SIG_IGN, 0, NULL);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, rt1());
	sigaddset(&block, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &block, NULL))
		wl_setup_fail("sigprocmask: %s", strerror(errno));

	if (sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 111}) ||
	    sigqueue(getpid(), rt1(), (union sigval){.sival_int = 7}) ||
	    sigqueue(getpid(), rt1(), (union sigval){.sival_int = 8}))
		wl_setup_fail("sigqueue: %s", strerror(errno));
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGTERM))
		wl_setup_fail("tgkill: %s", strerror(errno));

	for (int sig = 1; sig <= NSIG_ALL; sig++)
		syscall(SYS_rt_sigaction, sig, NULL, &dispositions[sig], 8);
	blocked_at_ready = raw_blocked();
	pending_at_ready = status_mask("SigPnd") | status_mask("ShdPnd");
}

static void check_dispositions(void)
{
	for (int sig = 1; sig <= NSIG_ALL; sig++) {
		struct raw_sigaction now, *was = &dispositions[sig];

		if (!wl_expect(syscall(SYS_rt_sigaction, sig, NULL, &now, 8) == 0,
			       "rt_sigaction %d: %s", sig, strerror(errno)))
			continue;
		wl_expect(now.handler == was->handler && now.flags == was->flags &&
			      now.restorer == was->restorer && now.mask == was->mask,
			  "signal %d: handler %p flags %#lx restorer %p mask %#" PRIx64
			  ", was %p %#lx %p %#" PRIx64,
			  sig, now.handler, now.flags, now.restorer, now.mask, was->handler,
			  was->flags, was->restorer, was->mask);
	}
}

static void check_settings(void)
{
	struct sigaction sa;
	stack_t ss;
	sigset_t set;

	sigaction(SIGUSR1, NULL, &sa);
	wl_expect(sa.sa_sigaction == on_usr1 &&
		      (sa.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART),
		  "SIGUSR1: handler %p flags %#x", (void *)sa.sa_sigaction, sa.sa_flags);
	sigaction(SIGHUP, NULL, &sa);
	wl_expect(sa.sa_handler == on_hup && (sa.sa_flags & SA_ONSTACK),
		  "SIGHUP: handler %p flags %#x", (void *)sa.sa_handler, sa.sa_flags);
	sigaction(rt1(), NULL, &sa);
	wl_expect(sa.sa_sigaction == on_rt && (sa.sa_flags & SA_SIGINFO) &&
		      !(sa.sa_flags & SA_RESTART),
		  "SIGRTMIN+1: handler %p flags %#x", (void *)sa.sa_sigaction, sa.sa_flags);
	for (int sig = 1; sig <= NSIG_ALL; sig++) {
		if (sig == 32 || sig == 33)
			continue; /* glibc's own; its sigismember refuses them */
		bool want = sig == SIGPIPE || sig == SIGWINCH || sig == SIGRTMIN + 5;

		wl_expect(sigismember(&sa.sa_mask, sig) == want,
			  "SIGRTMIN+1's sa_mask %s signal %d", want ? "lacks" : "has", sig);
	}
	sigaction(SIGINT, NULL, &sa);
	wl_expect(sa.sa_handler == SIG_IGN, "SIGINT is no longer ignored");

	wl_expect(sigaltstack(NULL, &ss) == 0 && ss.ss_sp == altstack && ss.ss_size == ALT_SIZE &&
		      ss.ss_flags == 0,
		  "sigaltstack is %p+%zu flags %d, expected %p+%d", ss.ss_sp, ss.ss_size,
		  ss.ss_flags, altstack, ALT_SIZE);

	wl_expect(raw_blocked() == blocked_at_ready &&
		      blocked_at_ready == (bit(SIGUSR1) | bit(rt1()) | bit(SIGTERM)),
		  "blocked mask is %#" PRIx64 ", was %#" PRIx64, raw_blocked(), blocked_at_ready);

	sigpending(&set);
	wl_expect(sigismember(&set, SIGUSR1) && sigismember(&set, rt1()) &&
		      sigismember(&set, SIGTERM),
		  "sigpending lost a signal");
	wl_expect(status_mask("SigPnd") == bit(SIGTERM),
		  "thread pending is %#" PRIx64 ", expected only SIGTERM", status_mask("SigPnd"));
	wl_expect(status_mask("ShdPnd") == (bit(SIGUSR1) | bit(rt1())),
		  "process pending is %#" PRIx64 ", expected SIGUSR1 and SIGRTMIN+1",
		  status_mask("ShdPnd"));
	wl_expect((status_mask("SigPnd") | status_mask("ShdPnd")) == pending_at_ready,
		  "pending signals changed");
}

static void unblock(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void check_delivery(void)
{
	pid_t me = getpid();
	sigset_t set;

	unblock(SIGUSR1);
	wl_expect(
	    usr1_runs == 1 && usr1_value == 111 && usr1_code == SI_QUEUE && usr1_pid == me,
	    "SIGUSR1 ran %d times, value %d code %d pid %d (expected once, 111, SI_QUEUE, %d)",
	    usr1_runs, usr1_value, usr1_code, usr1_pid, me);

	unblock(rt1());
	wl_expect(rt_runs == 2 && rt_values[0] == 7 && rt_values[1] == 8,
		  "SIGRTMIN+1 ran %d times with values %d, %d (expected 7 then 8)", rt_runs,
		  rt_values[0], rt_values[1]);
	wl_expect(rt_codes[0] == SI_QUEUE && rt_codes[1] == SI_QUEUE,
		  "SIGRTMIN+1 si_code %d, %d (expected SI_QUEUE)", rt_codes[0], rt_codes[1]);
	wl_expect(rt_mask_ok, "SIGRTMIN+1's sa_mask was not blocked while its handler ran");

	unblock(SIGTERM);
	wl_expect(term_runs == 1 && term_code == SI_TKILL && term_pid == me,
		  "SIGTERM ran %d times, code %d pid %d (expected once, SI_TKILL, %d)", term_runs,
		  term_code, term_pid, me);

	sigpending(&set);
	for (int sig = 1; sig <= NSIG_ALL; sig++)
		if (sig != 32 && sig != 33)
			wl_expect(!sigismember(&set, sig), "signal %d still pending", sig);

	raise(SIGHUP);
	wl_expect(hup_runs == 1, "SIGHUP ran %d times", hup_runs);
	wl_expect(hup_on_altstack, "SIGHUP's handler did not run on the alternate stack");
	wl_expect(hup_ss_flags == SS_ONSTACK, "sigaltstack flags in SIGHUP's handler are %d",
		  hup_ss_flags);

	raise(SIGINT); /* ignored: nothing happens */
}

int main(int argc, char **argv)
{
	wl_start(argc, argv, 0, "");
	setup();
	wl_ready();

	wl_wait_for_check();

	wl_check_fds();
	check_dispositions();
	check_settings();
	check_delivery();
	wl_finish();
}
