#!/bin/bash
# Without -d, ferry restore stays as the parent of the restored process, waits
# for it and exits with its exit status (0 after PASS).
. "$(dirname "$0")/../lib.sh"

wl_start counter
wl_wait_ready
pid=$WL_PID
counter_wait_tick "$WL_OUT" 2 || fail "counter did not reach tick 2"
ferry_dump "$pid" "$T/img"
last=$(counter_last_tick "$WL_OUT")

"$FERRY" restore -D "$T/img" -v4 -o "$T/restore.log" \
	</dev/null >"$T/restore.stdout.log" 2>"$T/restore.err.log" &
restorer=$!
track_pid "$restorer"

# the restored process runs once it writes its next tick
if ! counter_wait_tick "$WL_OUT" $((last + 1)); then
	pid_alive "$restorer" && fail "no tick after restore; ferry restore still runs"
	wait "$restorer"
	fail "no tick after restore; ferry restore exited with $?: $(tail -n 3 "$T/restore.err.log")"
fi
track_pid "$pid"
pid_alive "$restorer" || fail "ferry restore exited while the restored process runs"
[ "$(proc_ppid "$pid")" = "$restorer" ] ||
	fail "parent of the restored process is $(proc_ppid "$pid"), not ferry restore ($restorer)"

kill -USR2 "$pid"
"$WL/pidwait" "$restorer" "$PASS_TIMEOUT" >/dev/null 2>&1 ||
	fail "ferry restore still runs $PASS_TIMEOUT s after SIGUSR2 to $pid"
wait "$restorer"
rc=$?
grep -q '^PASS$' "$WL_OUT" || fail "no PASS after SIGUSR2"
[ "$rc" = 0 ] || fail "ferry restore exited with $rc, expected the process's status 0"
assert_not_running "$pid" "after ferry restore returned"
