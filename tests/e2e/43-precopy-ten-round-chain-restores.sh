#!/bin/bash
# Ten pre-copy rounds in a row, with writes, mmap, munmap, mremap, read() and
# MADV_DONTNEED between them, then the final dump: every round links to the
# one before (given with --prev-images-dir, or left to the default: the round
# that left tracking armed), saves holes for what did not change, and restore
# through the chain of eleven directories is byte-exact.
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

# inv DIR FIELD, round_stat DIR FIELD: a field of the round's inventory or of its stats.
inv()
{
	"$PY" "$CHECK" field "$1.json" "$2" || fail "${1#"$T"/}: no $2 in the inventory"
}
round_stat()
{
	"$PY" "$CHECK" stat "$1.json" "$2" || fail "${1#"$T"/}: no $2 in the stats"
}

# linked DIR PARENT_DIR: DIR names PARENT_DIR's snapshot as its parent, and has holes.
linked()
{
	local want got holes
	want=$(inv "$2" snapshot_id)
	got=$(inv "$1" parent_snapshot_id)
	[ -n "$want" ] && [ "$got" = "$want" ] ||
		fail "${1#"$T"/} names parent snapshot '$got', ${2#"$T"/} is '$want'"
	holes=$(round_stat "$1" pages_in_parent)
	[ "$holes" -gt 0 ] 2>/dev/null || fail "${1#"$T"/}: pages_in_parent is '$holes', expected > 0"
}

wl_start dirty
wl_wait_ready
pid=$WL_PID

pre_dump "$T/r1"
"$PY" "$CHECK" round "$T/r1.json" "$WL_OUT" 0 none >"$T/why" || fail "$(cat "$T/why")"
k=0
for r in 2 3 4 5 6 7 8 9 10; do
	step $((k + 1))
	step $((k + 2))
	if [ $((r % 2)) = 0 ]; then
		pre_dump "$T/r$r" --prev-images-dir "../r$((r - 1))"
	else
		pre_dump "$T/r$r"
	fi
	linked "$T/r$r" "$T/r$((r - 1))"
	"$PY" "$CHECK" round "$T/r$r.json" "$WL_OUT" $((k + 2)) $k >"$T/why" || fail "$(cat "$T/why")"
	k=$((k + 2))
done
say "ten rounds after $k steps; holes in the last: $(round_stat "$T/r10" pages_in_parent)"

step $((k + 1))
ferry_dump "$pid" "$T/final" --prev-images-dir ../r10 --track-mem
show_json "$T/final"
linked "$T/final" "$T/r10"
"$PY" "$CHECK" round "$T/final.json" "$WL_OUT" $((k + 1)) $k >"$T/why" || fail "$(cat "$T/why")"

ferry_restore "$T/final"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
