#!/bin/bash
# dump --leave-running writes a complete image and leaves the target running
# correctly, also after several such dumps.
. "$(dirname "$0")/../lib.sh"

wl_start mem
wl_wait_ready
pid=$WL_PID
start=$(proc_starttime "$pid")
for round in 1 2 3; do
	ferry_dump "$pid" "$T/img.$round" --leave-running
	[ "$(proc_starttime "$pid")" = "$start" ] || fail "round $round: $pid is another process now"
	[ "$(proc_status_field "$pid" TracerPid)" = 0 ] || fail "round $round: $pid is still traced"
	case $(proc_status_field "$pid" State) in
	S* | R*) ;;
	*) fail "round $round: $pid is in state $(proc_status_field "$pid" State)" ;;
	esac
done
"$FERRY" show "$T/img.3" >/dev/null 2>"$T/show.err.log" || fail "ferry show cannot read the --leave-running image"
wl_expect_pass "$pid" "$WL_OUT"
