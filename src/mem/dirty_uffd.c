#include "mem/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "mem/kapi.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

int uffd_wp_create(struct infect *ic, int *uffd, struct ferry_err *err)
{
	long tfd;
	int r;

	/* user-mode-only: allowed for a non-root target with vm.unprivileged_userfaultfd=0;
	 * async write-protection never delivers a fault, so nothing is lost */
	r = infect_syscall_ok(ic, "create a userfaultfd", __NR_userfaultfd, &tfd,
			      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0, err);
	if (r < 0)
		return r;
	_cleanup_close_ int pidfd = syscall(SYS_pidfd_open, ic->pid, 0);
	int fd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
	int saved = errno;
	long ignored;
	infect_syscall(ic, __NR_close, &ignored, tfd, 0, 0, 0, 0, 0, err);
	if (fd < 0) {
		errno = saved;
		return ferry_fail_errno(err, "pid %d: take its userfaultfd", ic->pid);
	}
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		r = ferry_fail_errno(err, "pid %d: enable async write-protect tracking", ic->pid);
		close(fd);
		return r;
	}
	*uffd = fd;
	return 0;
}

int uffd_wp_register(int uffd, uint64_t start, uint64_t end, struct ferry_err *err)
{
	struct uffdio_register reg = {
		.range = {.start = start, .len = end - start},
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return ferry_fail_errno(err, "register %lx-%lx for write tracking",
					(unsigned long)start, (unsigned long)end);
	return 0;
}

int uffd_wp_protect(int uffd, uint64_t start, uint64_t end, struct ferry_err *err)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = start, .len = end - start},
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return ferry_fail_errno(err, "write-protect %lx-%lx", (unsigned long)start,
					(unsigned long)end);
	return 0;
}
