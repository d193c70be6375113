#!/bin/bash
# Pre-copy through a page server: two pre-dump rounds and the final dump go
# to one server, which keeps the chain (each round's holes checked against
# its parent there); the final image restores exactly.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

"$FERRY" pre-dump --help 2>/dev/null | grep -q -- --page-server ||
	skip "ferry pre-dump has no --page-server yet"

ps_dump_server
wl_ready counter
pid=$WL_PID
counter_wait_tick "$WL_OUT" 2 || fail "counter does not tick"
run_ferry pre1 pre-dump -t "$pid" -D "$T/src/p1" "${PS_OPTS[@]}" -v4 -o "$T/pre1.log" ||
	fail "pre-dump 1: $(cat "$T/pre1.err")"
run_ferry pre2 pre-dump -t "$pid" -D "$T/src/p2" --prev-images-dir ../p1 "${PS_OPTS[@]}" -v4 -o "$T/pre2.log" ||
	fail "pre-dump 2: $(cat "$T/pre2.err")"
ferry_dump "$pid" "$T/src/d" --prev-images-dir ../p2 --track-mem "${PS_OPTS[@]}"
ps_copy_images p1 p2
grep -q "open p2/pid .*parent p1" "$T/ps.log" || fail "the server did not link p2 to p1"
grep -q "open d/pid .*parent p2" "$T/ps.log" || fail "the server did not link d to p2"
ps_restore_check d
exit 0
