#!/bin/bash
# The no-tracking fallback, forced with --no-dirty-tracking on every round:
# each round copies every present page (no holes, pages_in_parent 0) and says
# so with a warning, and restore through the chain gives the same state as
# with tracking (the workload's PASS).
. "$(dirname "$0")/../lib.sh"

CHECK=$(dirname "$0")/../precopy_check.py

# step K: the workload performs its step K.
step()
{
	kill -USR1 "$pid" || fail "cannot signal $pid for step $1"
	wait_line "$WL_OUT" "^# step $1 done\$" || fail "step $1 not done within $PASS_TIMEOUT s"
}

# show_json DIR: ferry show --json DIR into DIR.json.
show_json()
{
	"$FERRY" show --json "$1" >"$1.json" 2>"$T/show.err" ||
		fail "ferry show --json ${1#"$T"/} failed: $(cat "$T/show.err")"
}

# full_copy DIR STEP: the round holds every present page, and no hole.
full_copy()
{
	local holes why
	holes=$("$PY" "$CHECK" stat "$1.json" pages_in_parent) || fail "$holes"
	[ "$holes" = 0 ] || fail "${1#"$T"/}: pages_in_parent is $holes without dirty tracking"
	why=$("$PY" "$CHECK" round "$1.json" "$WL_OUT" "$2" none) || fail "$why"
}

wl_start dirty
wl_wait_ready
pid=$WL_PID

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

ferry_restore "$T/final"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
