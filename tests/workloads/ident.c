/*
 * ident: what a process is, apart from memory and files.
 *
 *   ident OUTFILE DIR
 *
 * Creates DIR (if needed; removed at exit if it made it) and chdirs there,
 * sets umask 027, RLIMIT_NOFILE soft 512, RLIMIT_CORE 0 soft / unlimited hard
 * (or the hard limit it has), RLIMIT_STACK soft 16 MiB, adds ADDR_NO_RANDOMIZE
 * to its personality (if allowed), names itself "ferry-ident" (PR_SET_NAME)
 * and arms ITIMER_REAL for 1000 s with a 1000 s interval (SIGALRM handled).
 *
 * On SIGUSR2: the cwd, umask, every resource limit, personality, name
 * (prctl and /proc/self/comm), pid, credentials (uids, gids, groups,
 * capabilities), no_new_privs, dumpable, pdeath signal, command line,
 * environment, exe link and auxv are what they were, and the itimer is still
 * armed: interval 1000 s, value in (900 s, 1000 s]. The session and process
 * group are reported with "# " lines if they changed, not checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "wl.h"

#define NAME "ferry-ident"
#define BLOB_MAX 16384

struct ident {
	pid_t pid, ppid, sid, pgid;
	char cwd[PATH_MAX];
	dev_t cwd_dev;
	ino_t cwd_ino;
	mode_t umask;
	struct rlimit rlim[RLIM_NLIMITS];
	int persona;
	char name[17];
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int ngroups;
	gid_t groups[64];
	struct __user_cap_data_struct caps[2];
	int no_new_privs, dumpable, pdeathsig;
	char exe[PATH_MAX];
};

struct blob {
	const char *path;
	char data[BLOB_MAX];
	ssize_t len;
};

static struct ident was, now;
static struct blob blobs[] = {
    {"/proc/self/cmdline"},
    {"/proc/self/environ"},
    {"/proc/self/auxv"},
};
#define NBLOBS (sizeof(blobs) / sizeof(blobs[0]))
static volatile sig_atomic_t alarms;
static struct itimerval timer_at_ready;

static const char *const rlimit_names[RLIM_NLIMITS] = {
    "CPU",     "FSIZE", "DATA",	 "STACK",      "CORE",	   "RSS",  "NPROC",  "NOFILE",
    "MEMLOCK", "AS",	"LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};

static void on_alarm(int sig)
{
	alarms++;
}

static void read_ident(struct ident *id)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct stat st;
	ssize_t n;

	memset(id, 0, sizeof(*id));
	id->pid = (pid_t)syscall(SYS_getpid);
	id->ppid = getppid();
	id->sid = getsid(0);
	id->pgid = getpgid(0);
	if (!getcwd(id->cwd, sizeof(id->cwd)))
		snprintf(id->cwd, sizeof(id->cwd), "(getcwd: %s)", strerror(errno));
	if (stat(".", &st) == 0) {
		id->cwd_dev = st.st_dev;
		id->cwd_ino = st.st_ino;
	}
	id->umask = umask(0);
	umask(id->umask);
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &id->rlim[r]);
	id->persona = personality(0xffffffff);
	prctl(PR_GET_NAME, id->name);
	getresuid(&id->ruid, &id->euid, &id->suid);
	getresgid(&id->rgid, &id->egid, &id->sgid);
	id->ngroups = getgroups(64, id->groups);
	syscall(SYS_capget, &hdr, id->caps);
	id->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	id->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_GET_PDEATHSIG, &id->pdeathsig);
	n = readlink("/proc/self/exe", id->exe, sizeof(id->exe) - 1);
	id->exe[n < 0 ? 0 : n] = 0;
}

static void set_rlimit(int resource, rlim_t soft, rlim_t hard)
{
	struct rlimit rl;

	getrlimit(resource, &rl);
	if (hard == RLIM_INFINITY || hard > rl.rlim_max) {
		struct rlimit want = {soft, hard};

		if (setrlimit(resource, &want) == 0)
			return;
		hard = rl.rlim_max; /* not allowed to raise it */
	}
	if (soft > hard)
		soft = hard;
	rl.rlim_cur = soft;
	rl.rlim_max = hard;
	if (setrlimit(resource, &rl))
		wl_setup_fail("setrlimit %s: %s", rlimit_names[resource], strerror(errno));
}

static void setup(const char *dir)
{
	char abs_dir[PATH_MAX];
	struct itimerval it = {{1000, 0}, {1000, 0}};
	struct sigaction sa;
	struct rlimit rl;
	int persona;

	if (mkdir(dir, 0755) == 0) {
		if (!realpath(dir, abs_dir))
			wl_setup_fail("realpath %s: %s", dir, strerror(errno));
		wl_adopt_temp(abs_dir, true); /* removed at exit if still empty */
	} else if (errno != EEXIST) {
		wl_setup_fail("mkdir %s: %s", dir, strerror(errno));
	}
	if (chdir(dir))
		wl_setup_fail("chdir %s: %s", dir, strerror(errno));
	umask(027);

	getrlimit(RLIMIT_NOFILE, &rl);
	set_rlimit(RLIMIT_NOFILE, 512, rl.rlim_max);
	set_rlimit(RLIMIT_CORE, 0, RLIM_INFINITY);
	getrlimit(RLIMIT_STACK, &rl);
	set_rlimit(RLIMIT_STACK, 16 << 20, rl.rlim_max);

	persona = personality(0xffffffff);
	if (personality(persona | ADDR_NO_RANDOMIZE) < 0)
		wl_say("personality ADDR_NO_RANDOMIZE: %s (ignored)", strerror(errno));

	if (prctl(PR_SET_NAME, NAME, 0, 0, 0))
		wl_setup_fail("PR_SET_NAME: %s", strerror(errno));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL))
		wl_setup_fail("setitimer: %s", strerror(errno));

	read_ident(&was);
	for (size_t i = 0; i < NBLOBS; i++) {
		blobs[i].len = wl_read_file(blobs[i].path, blobs[i].data, BLOB_MAX);
		if (blobs[i].len < 0)
			wl_setup_fail("read %s: %s", blobs[i].path, strerror(errno));
	}
	getitimer(ITIMER_REAL, &timer_at_ready);
}

static void check_ident(void)
{
	static char data[BLOB_MAX];
	char comm[32];

	read_ident(&now);
	wl_expect(now.pid == was.pid, "pid is %d, was %d", now.pid, was.pid);
	if (now.ppid != was.ppid)
		wl_say("parent changed from %d to %d", was.ppid, now.ppid);
	if (now.sid != was.sid || now.pgid != was.pgid)
		wl_say("session/group changed from %d/%d to %d/%d", was.sid, was.pgid, now.sid,
		       now.pgid);
	wl_expect(!strcmp(now.cwd, was.cwd) && now.cwd_dev == was.cwd_dev &&
		      now.cwd_ino == was.cwd_ino,
		  "cwd is %s, was %s", now.cwd, was.cwd);
	wl_expect(now.umask == was.umask && was.umask == 027, "umask is %03o, was %03o", now.umask,
		  was.umask);
	for (int r = 0; r < RLIM_NLIMITS; r++)
		wl_expect(now.rlim[r].rlim_cur == was.rlim[r].rlim_cur &&
			      now.rlim[r].rlim_max == was.rlim[r].rlim_max,
			  "RLIMIT_%s is %lld/%lld, was %lld/%lld", rlimit_names[r],
			  (long long)now.rlim[r].rlim_cur, (long long)now.rlim[r].rlim_max,
			  (long long)was.rlim[r].rlim_cur, (long long)was.rlim[r].rlim_max);
	wl_expect(was.rlim[RLIMIT_NOFILE].rlim_cur == 512, "RLIMIT_NOFILE was not set to 512");
	wl_expect(was.rlim[RLIMIT_STACK].rlim_cur == 16 << 20, "RLIMIT_STACK was not set");
	wl_expect(now.persona == was.persona, "personality is %#x, was %#x", now.persona,
		  was.persona);
	wl_expect(!strcmp(now.name, NAME) && !strcmp(was.name, NAME), "name is '%s', was '%s'",
		  now.name, was.name);
	if (wl_read_file("/proc/self/comm", comm, sizeof(comm)) > 0)
		wl_expect(!strcmp(comm, NAME "\n"), "/proc/self/comm is '%s'", comm);
	wl_expect(now.ruid == was.ruid && now.euid == was.euid && now.suid == was.suid,
		  "uids are %d/%d/%d, were %d/%d/%d", now.ruid, now.euid, now.suid, was.ruid,
		  was.euid, was.suid);
	wl_expect(now.rgid == was.rgid && now.egid == was.egid && now.sgid == was.sgid,
		  "gids are %d/%d/%d, were %d/%d/%d", now.rgid, now.egid, now.sgid, was.rgid,
		  was.egid, was.sgid);
	wl_expect(now.ngroups == was.ngroups &&
		      !memcmp(now.groups, was.groups,
			      sizeof(gid_t) * (now.ngroups > 0 ? now.ngroups : 0)),
		  "supplementary groups changed");
	wl_expect(!memcmp(now.caps, was.caps, sizeof(now.caps)),
		  "capabilities changed (effective %#x, was %#x)", now.caps[0].effective,
		  was.caps[0].effective);
	wl_expect(now.no_new_privs == was.no_new_privs, "no_new_privs is %d, was %d",
		  now.no_new_privs, was.no_new_privs);
	wl_expect(now.dumpable == was.dumpable, "dumpable is %d, was %d", now.dumpable,
		  was.dumpable);
	wl_expect(now.pdeathsig == was.pdeathsig, "pdeath signal is %d, was %d", now.pdeathsig,
		  was.pdeathsig);
	wl_expect(!strcmp(now.exe, was.exe), "exe is '%s', was '%s'", now.exe, was.exe);
	for (size_t i = 0; i < NBLOBS; i++) {
		ssize_t n = wl_read_file(blobs[i].path, data, BLOB_MAX);

		wl_expect(n == blobs[i].len && !memcmp(data, blobs[i].data, n),
			  "%s changed (%zd bytes, was %zd)", blobs[i].path, n, blobs[i].len);
	}
}

static void check_timer(void)
{
	struct itimerval it;

	if (!wl_expect(getitimer(ITIMER_REAL, &it) == 0, "getitimer: %s", strerror(errno)))
		return;
	wl_expect(it.it_interval.tv_sec == 1000 && it.it_interval.tv_usec == 0,
		  "ITIMER_REAL interval is %ld.%06ld s, expected 1000 s",
		  (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
	wl_expect((it.it_value.tv_sec > 900 && it.it_value.tv_sec < 1000) ||
		      (it.it_value.tv_sec == 1000 && it.it_value.tv_usec == 0),
		  "ITIMER_REAL value is %ld.%06ld s, expected in (900, 1000]",
		  (long)it.it_value.tv_sec, (long)it.it_value.tv_usec);
	wl_expect(it.it_value.tv_sec <= timer_at_ready.it_value.tv_sec,
		  "ITIMER_REAL went up from %ld s to %ld s", (long)timer_at_ready.it_value.tv_sec,
		  (long)it.it_value.tv_sec);
	wl_expect(alarms == 0, "SIGALRM came %d times", (int)alarms);
}

int main(int argc, char **argv)
{
	wl_start(argc, argv, 1, "DIR");
	setup(argv[2]);
	wl_say("cwd %s", was.cwd);
	wl_ready();

	wl_wait_for_check();

	wl_check_fds();
	check_ident();
	check_timer();
	wl_finish();
}
