#!/bin/bash
# Twenty dump/restore cycles of the same process in a row: same pid every time,
# the count goes on after each, and the state is still correct at the end.
. "$(dirname "$0")/../lib.sh"

wl_start counter
wl_wait_ready
pid=$WL_PID
counter_wait_tick "$WL_OUT" 1 || fail "counter did not reach tick 1"

for cycle in $(seq 1 20); do
	rm -rf "$T/img"
	ferry_dump "$pid" "$T/img"
	last=$(counter_last_tick "$WL_OUT")
	ferry_restore "$T/img"
	[ "$RESTORED_PID" = "$pid" ] || fail "cycle $cycle: restored with pid $RESTORED_PID, dumped $pid"
	counter_wait_tick "$WL_OUT" $((last + 1)) ||
		fail "cycle $cycle: no tick $((last + 1)) after restore"
done
say "20 cycles, last tick $(counter_last_tick "$WL_OUT")"
wl_expect_pass "$pid" "$WL_OUT"
