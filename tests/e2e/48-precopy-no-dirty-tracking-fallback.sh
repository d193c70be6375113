#!/bin/bash
# The no-tracking fallback, forced with --no-dirty-tracking on every round:
# each round copies every present page (no holes, pages_in_parent 0) and says
# so with a warning, and restore through the chain gives the same state as
# with tracking (the workload's PASS).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

# full_copy DIR STEP: the round holds every present page, and no hole.
full_copy()
{
	local holes
	holes=$("$PY" "$CHECK" stat "$1.json" pages_in_parent) || fail "$holes"
	[ "$holes" = 0 ] || fail "${1#"$T"/}: pages_in_parent is $holes without dirty tracking"
	round_check "$1" "$2" none
}

dirty_start

for k in 0 1 2 3 4 5 6; do
	[ $k = 0 ] || step $k
	prev=()
	[ $k = 0 ] || prev=(--prev-images-dir "../r$((k - 1))")
	_SEQ=$((_SEQ + 1))
	log=$T/predump.$_SEQ.log
	run_ferry "predump.$_SEQ" pre-dump -t "$pid" -D "$T/r$k" "${prev[@]}" --no-dirty-tracking -v4 -o "$log" ||
		fail "ferry pre-dump -t $pid -D r$k --no-dirty-tracking failed: $(tail -n 3 "$T/predump.$_SEQ.err")"
	pid_alive "$pid" || fail "target $pid is gone after pre-dump r$k"
	grep -qi 'warn' "$log" "$T/predump.$_SEQ.err" ||
		fail "round r$k copied everything without a warning"
	show_json "$T/r$k"
	full_copy "$T/r$k" $k
done

step 7
ferry_dump "$pid" "$T/final" --prev-images-dir ../r6
show_json "$T/final"
full_copy "$T/final" 7

restored_as_dumped "$T/final"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
