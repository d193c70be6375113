#!/bin/bash
# A target already traced by another process is refused with a one-line
# message and left exactly as it was; once its tracer is gone it runs on fine.
. "$(dirname "$0")/../lib.sh"

wl_start mem
wl_wait_ready
bg_start ptrace-hold "$WL/ptrace-hold" "$WL_PID"
holder=$BG_PID
for _ in $(seq 1 200); do
	[ "$(proc_status_field "$WL_PID" TracerPid)" = "$holder" ] && break
	pid_alive "$holder" || fail "ptrace-hold exited: $(cat "$BG_LOG")"
	sleep 0.05
done
[ "$(proc_status_field "$WL_PID" TracerPid)" = "$holder" ] || fail "ptrace-hold did not attach to $WL_PID"

refused_dump_check "trace" "$holder"
[ "$(proc_status_field "$WL_PID" TracerPid)" = "$holder" ] || fail "the target lost its tracer"

kill -KILL "$holder"
wait "$holder" 2>/dev/null
wl_expect_pass "$WL_PID" "$WL_OUT"
