#!/bin/bash
# The target is killed while a pre-copy round runs: the round fails (or, had
# it finished first, is complete), the earlier rounds are untouched and still
# readable, and no ferry-keeper outlives the target.
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
}

# intact DIR: ferry show reads the round, complete, and its files are as they were.
intact()
{
	local name=${1#"$T"/}
	"$FERRY" show --json "$1" >"$T/$name.json" 2>"$T/show.err" ||
		fail "ferry show $name fails after the killed round: $(cat "$T/show.err")"
	[ "$("$PY" "$CHECK" field "$T/$name.json" complete)" = True ] ||
		fail "$name is not complete any more after the killed round"
	(cd "$1" && md5sum -c --quiet "$T/$name.md5" >"$T/md5.err" 2>&1) ||
		fail "$name changed during the killed round: $(head -n 3 "$T/md5.err")"
}

# a big shared mapping (saved whole by every round) makes the round last
wl_start dirty 16 128
wl_wait_ready
pid=$WL_PID

pre_dump "$T/r1"
step 1
pre_dump "$T/r2" --prev-images-dir ../r1
for r in r1 r2; do
	(cd "$T/$r" && md5sum ./* >"$T/$r.md5") || fail "cannot checksum $r"
done
keepers=$("$PY" "$CHECK" keepers "$pid")
[ -n "$keepers" ] || fail "no ferry-keeper tracks $pid after two rounds"
step 2

# the third round, killed under it (its log says when it has the target frozen)
bg_start predump3 "$FERRY" pre-dump -t "$pid" -D "$T/r3" -v4 -o "$T/r3.log"
ferry_pid=$BG_PID
wait_line "$T/r3.log" 'frozen' "$FERRY_TIMEOUT" || fail "the third round did not freeze $pid: $(cat "$BG_LOG")"
kill -KILL "$pid"
"$WL/pidwait" "$pid" 10 >/dev/null 2>&1 || fail "the target $pid did not die of SIGKILL"
wait "$pid" 2>/dev/null
"$WL/pidwait" "$ferry_pid" "$FERRY_TIMEOUT" >/dev/null 2>&1 || fail "the killed round did not end"
wait "$ferry_pid"
rc=$?
intact "$T/r1"
intact "$T/r2"
for k in $keepers; do
	"$WL/pidwait" "$k" 10 >/dev/null 2>&1 || fail "ferry-keeper $k still runs 10 s after its target $pid died"
done
left=$("$PY" "$CHECK" keepers "$pid")
[ -z "$left" ] || fail "ferry-keeper $left outlives its target $pid"

# and the killed round itself: a complete image, or a failure with a reason
# that leaves nothing presented as complete
if [ "$rc" = 0 ]; then
	say "the third round finished before the target died"
	"$FERRY" show "$T/r3" >/dev/null 2>"$T/show.err" ||
		fail "the third round succeeded but ferry show cannot read it: $(cat "$T/show.err")"
else
	[ "$rc" -lt 124 ] || fail "the killed round died with exit status $rc: $(cat "$BG_LOG")"
	msg=$(tail -n 1 "$BG_LOG")
	say "the killed round failed (exit $rc): $msg"
	reason=${msg#*pre-dump:}
	[ -n "${reason// /}" ] || fail "the killed round failed without saying why: '$msg'"
	if [ -e "$T/r3/inventory.img" ] && "$FERRY" show --json "$T/r3" >"$T/r3.json" 2>/dev/null &&
		[ "$("$PY" "$CHECK" field "$T/r3.json" complete)" = True ]; then
		fail "the failed round (exit $rc) left r3 with an inventory.img that says complete"
	fi
fi
