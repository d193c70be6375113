#!/bin/bash
# A counting process restored with -d has the same pid and goes on counting
# from where it was dumped; --pidfile is relative to the caller's cwd.
. "$(dirname "$0")/../lib.sh"

wl_start counter
wl_wait_ready
pid=$WL_PID
counter_wait_tick "$WL_OUT" 3 || fail "counter did not reach tick 3"

ferry_dump "$pid" "$T/img"
last=$(counter_last_tick "$WL_OUT")
[ -n "$last" ] || fail "no tick in $WL_OUT"

(cd "$T" && timeout --foreground -k 5 "$FERRY_TIMEOUT" \
	"$FERRY" restore -D img -d --pidfile counter.pid -v4 -o restore.log) 2>"$T/restore.err" ||
	fail "ferry restore failed: $(tail -n 3 "$T/restore.err")"
[ -s "$T/counter.pid" ] || fail "no pid file counter.pid in the caller's cwd"
restored=$(tr -d '[:space:]' <"$T/counter.pid")
track_pid "$restored"
[ "$restored" = "$pid" ] || fail "restored with pid $restored, dumped $pid"

counter_wait_tick "$WL_OUT" $((last + 1)) || fail "no tick $((last + 1)) after restore (last before: $last)"
counter_wait_tick "$WL_OUT" $((last + 3)) || fail "no tick $((last + 3)) after restore"
say "ticks went on from $last with pid $pid"
wl_expect_pass "$pid" "$WL_OUT"
