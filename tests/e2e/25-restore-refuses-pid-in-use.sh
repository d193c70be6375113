#!/bin/bash
# Restoring an image while its pid is in use (the original still runs after
# dump --leave-running) fails cleanly, creates nothing, and leaves the
# original running correctly.
. "$(dirname "$0")/../lib.sh"

wl_start mem
wl_wait_ready
pid=$WL_PID
start=$(proc_starttime "$pid")
ferry_dump "$pid" "$T/img" --leave-running
before=$(proc_snapshot "$pid")

expect_fail_cmd "$pid" "$FERRY" restore -D "$T/img" -d --pidfile "$T/restored.pid"
[ "$(proc_starttime "$pid")" = "$start" ] || fail "pid $pid is another process after the failed restore"
[ "$before" = "$(proc_snapshot "$pid")" ] || fail "the original changed during the failed restore"
[ -e "$T/restored.pid" ] && fail "a pid file was written by the failed restore"
assert_nothing_left "$pid"
wl_expect_pass "$pid" "$WL_OUT"
