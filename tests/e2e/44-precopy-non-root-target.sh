#!/bin/bash
# A target running as an unprivileged user (nobody; vm.unprivileged_userfaultfd
# does not let it make a userfaultfd itself) is pre-copied with dirty tracking:
# the second round has holes and exactly the written pages, and restore through
# the chain gives back the same process, still as nobody, byte-exact.
. "$(dirname "$0")/../lib.sh"

CHECK=$(dirname "$0")/../precopy_check.py

command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
NOBODY=$(id -u nobody 2>/dev/null) || skip "there is no user nobody"
NOGROUP=$(id -g nobody)

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

# The workload's own directory (its OUTFILE and temp files) is nobody's; T
# must be passable for it. The images stay in T, root's only.
chmod 0711 "$T" || fail "cannot chmod $T"
U=$T/nobody
mkdir "$U" && chown "$NOBODY:$NOGROUP" "$U" || fail "cannot make $U for nobody"
WL_OUT=$U/dirty.out
(close_extra_fds && cd "$U" && TMPDIR=$U exec setpriv --reuid="$NOBODY" --regid="$NOGROUP" \
	--clear-groups "$WL/dirty" "$WL_OUT") </dev/null >"$T/dirty.log" 2>&1 &
pid=$!
track_pid "$pid"
wl_wait_ready "$pid" "$WL_OUT"
uid=$(proc_status_field "$pid" Uid)
[ "$(echo $uid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "the target runs with Uid '$uid', not as nobody"

pre_dump "$T/r1"
step 1
step 2
pre_dump "$T/r2" --prev-images-dir ../r1
holes=$("$PY" "$CHECK" stat "$T/r2.json" pages_in_parent) || fail "$holes"
[ "$holes" -gt 0 ] || fail "the second round of a non-root target has no holes (pages_in_parent $holes)"
"$PY" "$CHECK" round "$T/r2.json" "$WL_OUT" 2 0 >"$T/why" || fail "$(cat "$T/why")"
[ "$(stat -c %u "$T/r2/inventory.img")" = 0 ] || fail "the images are not root's"

step 3
ferry_dump "$pid" "$T/final" --prev-images-dir ../r2 --track-mem
ferry_restore "$T/final"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
uid=$(proc_status_field "$RESTORED_PID" Uid)
[ "$(echo $uid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "restored with Uid '$uid', not as nobody"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
