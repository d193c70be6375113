/*
 * sleep: a process that is always inside a blocking system call.
 *
 *   sleep OUTFILE rel|abs|read|poll|suspend|ppoll
 *
 *   rel      nanosleep 300 ms; on EINTR it sleeps the rest it was told
 *   abs      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) on deadlines 300 ms
 *            apart (deadlines missed while frozen are skipped)
 *   read     read() on an empty pipe whose write end it holds too; only the
 *            SIGUSR2 handler (no SA_RESTART) ends it
 *   poll     poll() on that pipe with a 300 ms timeout
 *   suspend  SIGUSR2 and SIGWINCH blocked, sigsuspend with only SIGWINCH
 *            blocked; after each return the mask must be the full one again
 *   ppoll    the same masks, in ppoll on the pipe with a 300 ms timeout
 *
 * The dump interrupts these calls in the kernel; the restore must restart them
 * or let them fail with EINTR. Every result is counted: success, EINTR, or
 * anything else (such as a restart code 512-516 leaking out), which fails the
 * check. rel, abs and poll append "# slept N" after each full sleep.
 *
 * On SIGUSR2: no unexpected result, the signal mask is right (suspend, ppoll),
 * and the call still works: two more sleeps of at least 300 ms (rel, abs,
 * poll, ppoll), a byte written to the pipe is read (read), a pending signal
 * ends sigsuspend at once (suspend).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

#define PERIOD_NS (300 * 1000 * 1000ULL)

enum mode { REL, ABS, READ, POLL, SUSPEND, PPOLL };
static const char *const mode_names[] = {"rel", "abs", "read", "poll", "suspend", "ppoll"};
#define NMODES 6

static enum mode mode;
static int pipefd[2];
static unsigned long successes, eintrs, others, sleeps;
static int other_errnos[8];
static const char *other_calls[8];
static uint64_t full_mask; /* suspend, ppoll: the mask outside the wait */
static unsigned long bad_masks;
static uint64_t bad_mask_seen;
static struct timespec deadline; /* abs */

static void note(const char *call, int err)
{
	if (!err) {
		successes++;
	} else if (err == EINTR) {
		eintrs++;
	} else {
		if (others < 8) {
			other_errnos[others] = err;
			other_calls[others] = call;
		}
		others++;
	}
}

static uint64_t blocked_now(void)
{
	uint64_t mask = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, 8);
	return mask;
}

static void note_mask(void)
{
	uint64_t now = blocked_now();

	if (now != full_mask) {
		bad_masks++;
		bad_mask_seen = now;
	}
}

static void timespec_add_ns(struct timespec *ts, uint64_t ns)
{
	ts->tv_nsec += ns % 1000000000ULL;
	ts->tv_sec += ns / 1000000000ULL + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* One step of the mode's wait; true if a full sleep (or read) completed. */
static bool step_rel(bool stop_on_check)
{
	struct timespec ts = {0, PERIOD_NS}, rem;

	for (;;) {
		if (nanosleep(&ts, &rem) == 0) {
			note("nanosleep", 0);
			return true;
		}
		note("nanosleep", errno);
		if (errno != EINTR || (stop_on_check && wl_check_requested))
			return false;
		ts = rem;
	}
}

static bool step_abs(bool stop_on_check)
{
	struct timespec now;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > deadline.tv_sec + 1) {
		wl_say("deadline %ld.%09ld passed long ago, skipping to now", (long)deadline.tv_sec,
		       deadline.tv_nsec);
		deadline = now;
		timespec_add_ns(&deadline, PERIOD_NS);
	}
	for (;;) {
		err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
		note("clock_nanosleep", err);
		if (!err)
			break;
		if (err != EINTR || (stop_on_check && wl_check_requested))
			return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	wl_expect(now.tv_sec > deadline.tv_sec ||
		      (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec),
		  "clock_nanosleep returned before its deadline");
	timespec_add_ns(&deadline, PERIOD_NS);
	return true;
}

static bool step_read(bool stop_on_check)
{
	char c;

	for (;;) {
		ssize_t n = read(pipefd[0], &c, 1);

		if (n == 1) {
			note("read", 0);
			return true;
		}
		note("read", n < 0 ? errno : EIO);
		if (n == 0 || errno != EINTR || (stop_on_check && wl_check_requested))
			return false;
	}
}

static bool step_poll(bool stop_on_check)
{
	uint64_t end = wl_now_ns(CLOCK_MONOTONIC) + PERIOD_NS;

	for (;;) {
		struct pollfd pfd = {pipefd[0], POLLIN, 0};
		uint64_t now = wl_now_ns(CLOCK_MONOTONIC);
		int n = poll(&pfd, 1, now >= end ? 0 : (int)((end - now + 999999) / 1000000));

		note("poll", n < 0 ? errno : 0);
		if (n > 0)
			wl_expect(false, "poll on the empty pipe returned %d", n);
		if (n == 0 && wl_now_ns(CLOCK_MONOTONIC) >= end)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
		if (stop_on_check && wl_check_requested)
			return false;
	}
}

static bool step_suspend(bool stop_on_check)
{
	sigset_t wait;

	sigemptyset(&wait);
	sigaddset(&wait, SIGWINCH);
	sigsuspend(&wait);
	note("sigsuspend", errno);
	note_mask();
	return false;
}

static bool step_ppoll(bool stop_on_check)
{
	uint64_t end = wl_now_ns(CLOCK_MONOTONIC) + PERIOD_NS;
	sigset_t wait;

	sigemptyset(&wait);
	sigaddset(&wait, SIGWINCH);
	for (;;) {
		struct pollfd pfd = {pipefd[0], POLLIN, 0};
		uint64_t now = wl_now_ns(CLOCK_MONOTONIC), left = now >= end ? 0 : end - now;
		struct timespec ts = {left / 1000000000ULL, left % 1000000000ULL};
		int n = ppoll(&pfd, 1, &ts, &wait);

		note("ppoll", n < 0 ? errno : 0);
		note_mask();
		if (n > 0)
			wl_expect(false, "ppoll on the empty pipe returned %d", n);
		if (n == 0 && wl_now_ns(CLOCK_MONOTONIC) >= end)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
		if (stop_on_check && wl_check_requested)
			return false;
	}
}

static bool step(bool stop_on_check)
{
	switch (mode) {
	case REL:
		return step_rel(stop_on_check);
	case ABS:
		return step_abs(stop_on_check);
	case READ:
		return step_read(stop_on_check);
	case POLL:
		return step_poll(stop_on_check);
	case SUSPEND:
		return step_suspend(stop_on_check);
	case PPOLL:
		return step_ppoll(stop_on_check);
	}
	return false;
}

static void setup(const char *arg)
{
	sigset_t block;
	int m;

	for (m = 0; m < NMODES && strcmp(arg, mode_names[m]); m++)
		;
	if (m == NMODES)
		wl_setup_fail("unknown mode '%s'", arg);
	mode = m;
	if (pipe(pipefd))
		wl_setup_fail("pipe: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	timespec_add_ns(&deadline, PERIOD_NS);
	if (mode == SUSPEND || mode == PPOLL) {
		sigemptyset(&block);
		sigaddset(&block, SIGUSR2);
		sigaddset(&block, SIGWINCH);
		sigprocmask(SIG_BLOCK, &block, NULL);
		full_mask = blocked_now();
	}
}

/*
 * Leaves SIGUSR2 pending, to be let in by the next wait's mask. It is blocked
 * here even if a restore lost the mask, so that the wait cannot hang.
 */
static void raise_blocked_usr2(void)
{
	sigset_t usr2;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	wl_check_requested = 0;
	raise(SIGUSR2);
	wl_expect(!wl_check_requested, "SIGUSR2 came in although it was blocked");
}

/* The wait still works after the check request. */
static void check_progress(void)
{
	char c = 'x';

	switch (mode) {
	case REL:
	case ABS:
	case POLL:
	case PPOLL:
		for (int i = 0; i < 2; i++) {
			uint64_t t0 = wl_now_ns(CLOCK_MONOTONIC), took;
			bool done = step(false);

			took = wl_now_ns(CLOCK_MONOTONIC) - t0;
			wl_expect(done, "%s sleep %d after the check did not complete",
				  mode_names[mode], i);
			if (mode != ABS)
				wl_expect(took >= PERIOD_NS - 1000000,
					  "%s sleep %d took only %llu ms", mode_names[mode], i,
					  (unsigned long long)(took / 1000000));
		}
		if (mode == PPOLL) {
			raise_blocked_usr2();
			step_ppoll(true);
			wl_expect(wl_check_requested, "ppoll did not deliver a pending SIGUSR2");
		}
		break;
	case READ:
		if (wl_expect(wl_write_all(pipefd[1], &c, 1) == 1, "write pipe: %s",
			      strerror(errno)))
			wl_expect(step(false), "read did not get a byte written to the pipe");
		break;
	case SUSPEND:
		raise_blocked_usr2();
		step(false);
		wl_expect(wl_check_requested, "sigsuspend did not deliver a pending SIGUSR2");
		break;
	}
}

int main(int argc, char **argv)
{
	wl_start(argc, argv, 1, "rel|abs|read|poll|suspend|ppoll");
	setup(argv[2]);
	wl_say("mode %s", mode_names[mode]);
	wl_ready();

	while (!wl_check_requested)
		if (step(true) && mode != READ)
			wl_say("slept %lu", ++sleeps);

	wl_say("%lu calls succeeded, %lu returned EINTR, %lu failed otherwise", successes, eintrs,
	       others);
	wl_check_fds();
	check_progress();
	for (unsigned long i = 0; i < others && i < 8; i++)
		wl_expect(false, "%s failed with errno %d (%s)", other_calls[i], other_errnos[i],
			  strerror(other_errnos[i]));
	wl_expect(others <= 8, "%lu unexpected results in all", others);
	if (mode == SUSPEND || mode == PPOLL)
		wl_expect(
		    !bad_masks, "%lu times the signal mask after the wait was %#llx, not %#llx",
		    bad_masks, (unsigned long long)bad_mask_seen, (unsigned long long)full_mask);
	wl_finish();
}
