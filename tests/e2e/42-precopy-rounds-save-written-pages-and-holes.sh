#!/bin/bash
# Each pre-copy round saves exactly the pages written since its parent round
# (and new mappings whole), records the other present pages as holes, and
# leaves unmapped and MADV_DONTNEED'd pages out; restore through the chain is
# byte-exact. Between rounds the workload writes pages by the CPU and by read(),
# maps, unmaps, moves (mremap) and zeroes (MADV_DONTNEED) memory.
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
	show_json "$dir"
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

pre_dump "$T/r0"
round_check "$T/r0" 0 none
for k in 1 2 3 4 5 6 7 8; do
	step $k
	pre_dump "$T/r$k" --prev-images-dir "../r$((k - 1))"
	round_check "$T/r$k" $k $((k - 1))
done
step 9
ferry_dump "$pid" "$T/final" --prev-images-dir ../r8 --track-mem
show_json "$T/final"
round_check "$T/final" 9 8

ferry_restore "$T/final"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
