#!/bin/bash
# One page server takes two dumps at the same time (two processes, two
# image directories); both restore exactly, and the server keeps serving.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

ps_dump_server
wl_ready mem
pid1=$WL_PID out1=$WL_OUT
wl_ready counter
pid2=$WL_PID out2=$WL_OUT
counter_wait_tick "$out2" 3 || fail "counter does not tick"

_SEQ=$((_SEQ + 1)); n1=$_SEQ
timeout -k 5 "$FERRY_TIMEOUT" "$FERRY" dump -t "$pid1" -D "$T/src/a" "${PS_OPTS[@]}" \
	-v4 -o "$T/dump.$n1.log" 2>"$T/dump.$n1.err" &
d1=$!
_SEQ=$((_SEQ + 1)); n2=$_SEQ
timeout -k 5 "$FERRY_TIMEOUT" "$FERRY" dump -t "$pid2" -D "$T/src/b" "${PS_OPTS[@]}" \
	-v4 -o "$T/dump.$n2.log" 2>"$T/dump.$n2.err" &
d2=$!
{ wait "$d1"; } 2>/dev/null || fail "dump of $pid1 failed: $(cat "$T/dump.$n1.err")"
{ wait "$d2"; } 2>/dev/null || fail "dump of $pid2 failed: $(cat "$T/dump.$n2.err")"
"$WL/pidwait" "$pid1" 10 >/dev/null 2>&1 && "$WL/pidwait" "$pid2" 10 >/dev/null 2>&1 ||
	fail "a dumped process still runs"
{ wait "$pid1" "$pid2"; } 2>/dev/null

for d in a b; do
	ls "$T"/dst/$d/pagemap-*.img >/dev/null 2>&1 || fail "the server holds no pagemap in $d"
	ps_copy_images $d
done
[ "$(grep -c 'committed' "$T/ps.log")" = 2 ] || fail "the server did not log two commits"
ferry_restore "$T/dst/a"
r1=$RESTORED_PID
ferry_restore "$T/dst/b"
r2=$RESTORED_PID
[ "$r1" = "$pid1" ] && [ "$r2" = "$pid2" ] || fail "restored pids $r1 $r2, dumped $pid1 $pid2"
wl_expect_pass "$r1" "$out1"
wl_expect_pass "$r2" "$out2"
pid_alive "$PS_PID" || fail "the page server died"
exit 0
