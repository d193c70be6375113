#!/bin/bash
# Post-copy, UFFD_EVENT_FORK: the lazily restored process forks at once; the
# child reads 1/8 of the region (pages still on the source, faulting in the
# child's own address space, so the daemon must follow the fork), checks
# them, writes one (its own copy), reports over a pipe and exits. The
# parent's pages stay exact, and the daemon still gets every page.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

fork_followed()
{
	grep -q 'followed a fork' "$T/lazy.log" || fail "the daemon's log does not say it followed the fork"
}
lazy_event_test fork fork_followed
