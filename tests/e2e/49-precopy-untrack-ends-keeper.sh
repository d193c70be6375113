#!/bin/bash
# `ferry untrack -t PID` ends the ferry-keeper that holds the dirty tracking of
# PID; the next pre-dump round copies everything and arms tracking again (a new
# keeper), so the round after it has holes again; restore still PASSes.
. "$(dirname "$0")/../lib.sh"

CHECK=$(dirname "$0")/../precopy_check.py

# step K: the workload performs its step K.
step()
{
	kill -USR1 "$pid" || fail "cannot signal $pid for step $1"
	wait_line "$WL_OUT" "^# step $1 done\$" || fail "step $1 not done within $PASS_TIMEOUT s"
}

# pre_dump DIR [OPTIONS...]: a pre-copy round of pid must succeed and leave it running.
pre_dump()
{
	local dir=$1 rc
	shift
	_SEQ=$((_SEQ + 1))
	run_ferry "predump.$_SEQ" pre-dump -t "$pid" -D "$dir" -v4 -o "$T/predump.$_SEQ.log" "$@"
	rc=$?
	[ "$rc" = 0 ] ||
		fail "ferry pre-dump -t $pid -D ${dir#"$T"/} $* failed (exit $rc): $(tail -n 3 "$T/predump.$_SEQ.err")"
	[ -f "$dir/inventory.img" ] || fail "pre-dump succeeded but ${dir#"$T"/} has no inventory.img"
	pid_alive "$pid" || fail "target $pid is gone after pre-dump ${dir#"$T"/}"
	"$FERRY" show --json "$dir" >"$dir.json" 2>"$T/show.err" ||
		fail "ferry show --json ${dir#"$T"/} failed: $(cat "$T/show.err")"
}

# round_check DIR STEP PARENT_STEP: the round's pages are what the model says.
round_check()
{
	local why
	why=$("$PY" "$CHECK" round "$1.json" "$WL_OUT" "$2" "$3") || fail "$why"
}

wl_start dirty
wl_wait_ready
pid=$WL_PID

pre_dump "$T/r1"
keepers=$("$PY" "$CHECK" keepers "$pid")
[ -n "$keepers" ] || fail "no ferry-keeper tracks $pid after the first round"
step 1

_SEQ=$((_SEQ + 1))
run_ferry "untrack.$_SEQ" untrack -t "$pid" -v4 -o "$T/untrack.$_SEQ.log" ||
	fail "ferry untrack -t $pid failed: $(tail -n 3 "$T/untrack.$_SEQ.err")"
for k in $keepers; do
	"$WL/pidwait" "$k" 10 >/dev/null 2>&1 || fail "ferry-keeper $k still runs 10 s after untrack"
done
left=$("$PY" "$CHECK" keepers "$pid")
[ -z "$left" ] || fail "ferry-keeper $left of $pid runs on after untrack"
pid_alive "$pid" || fail "the target $pid is gone after untrack"

# nothing is tracked: the next round (its parent left to the default) copies
# every page, and arms tracking anew
step 2
pre_dump "$T/r2"
round_check "$T/r2" 2 none
keepers2=$("$PY" "$CHECK" keepers "$pid")
[ -n "$keepers2" ] || fail "no ferry-keeper tracks $pid after the round that follows untrack"
step 3
pre_dump "$T/r3"
parent=$("$PY" "$CHECK" field "$T/r3.json" parent_snapshot_id)
[ "$parent" = "$("$PY" "$CHECK" field "$T/r2.json" snapshot_id)" ] ||
	fail "the round after r2 does not name r2 as its parent (it names '$parent')"
round_check "$T/r3" 3 2

step 4
ferry_dump "$pid" "$T/final" --track-mem
for k in $keepers2; do
	"$WL/pidwait" "$k" 10 >/dev/null 2>&1 || fail "ferry-keeper $k still runs 10 s after the final dump"
done
ferry_restore "$T/final"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
