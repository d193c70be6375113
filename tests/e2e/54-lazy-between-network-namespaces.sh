#!/bin/bash
# Post-copy between two "hosts": network namespaces made here, joined by a
# veth pair with 10.x addresses that exist only inside them. The dump (the
# source, serving the lazy pages) runs in one, the lazy-pages daemon and the
# restore in the other. The restored process runs every step (writes before
# arrival, fork, mremap, munmap, MADV_DONTNEED, reads of every page): all
# exact; the dump exits 0 and the source is gone. The namespaces are removed
# at the end.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
two_hosts lz 10.199.8

LAZY_ADDR=10.199.8.1
PORT=27019
SRC_PREFIX=(ip netns exec "$NS_SRC")
DST_PREFIX=(ip netns exec "$NS_DST")
lazy_run 64 all
lazy_dump_start
lazy_daemon_start
lazy_restore
[ "$(readlink "/proc/$RESTORED_PID/ns/net")" = "$(ip netns exec "$NS_DST" readlink /proc/self/ns/net)" ] ||
	fail "the restored process is not in the destination's network namespace"
grep -q '10.199.8.2' "$T/dump.log" || fail "the source did not see the daemon connect from 10.199.8.2"
lazy_step_run
lazy_wait_done
[ "$(lazy_stat pages_background)" -gt 0 ] || fail "no page came in the background"
wl_expect_pass "$RESTORED_PID" "$OUT"
two_hosts_remove
ip netns list | grep -q "ferry-lz-.*-$$" && fail "the network namespaces are still there"
exit 0
