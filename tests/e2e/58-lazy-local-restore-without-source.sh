#!/bin/bash
# A local lazy restore, no source process: lazyw (64 MiB) is dumped the plain
# way (it is killed), then `ferry lazy-pages -D img -d` (no --page-server)
# serves its pages from the image directory and `ferry restore --lazy-pages`
# runs it at once, with its pid. Every step (writes before arrival, fork,
# mremap, munmap, MADV_DONTNEED, reads) is exact, the daemon exits once every
# page arrived, and lazy-stats.json counts pages on fault and in background.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
wl_start lazyw 64 all
wl_wait_ready
OUT=$WL_OUT
pid=$WL_PID
ferry_dump "$pid" "$IMG"
LAZY_LOCAL=1 lazy_daemon_start
lazy_restore
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
lazy_step_run
"$WL/pidwait" "$LAZY_PID" 60 >/dev/null 2>&1 || fail "the lazy-pages daemon still runs 60 s after the restore"
grep -q 'all pages arrived' "$T/lazy.log" || fail "the daemon exited before all pages arrived: $(tail -n 2 "$T/lazy.err")"
[ "$(lazy_stat pages_on_fault)" -gt 0 ] || fail "no page arrived on a fault ($(cat "$IMG/lazy-stats.json"))"
[ "$(lazy_stat pages_background)" -gt 0 ] || fail "no page arrived in the background ($(cat "$IMG/lazy-stats.json"))"
wl_expect_pass "$RESTORED_PID" "$OUT"
assert_nothing_left
