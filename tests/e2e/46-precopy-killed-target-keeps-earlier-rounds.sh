#!/bin/bash
# The target is killed while a pre-copy round runs: the round fails (or, had
# it finished first, is complete), the earlier rounds are untouched and still
# readable, and no ferry-keeper outlives the target.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

# a big shared mapping (saved whole by every round) makes the round last
dirty_start 16 128

pre_dump "$T/r1"
step 1
pre_dump "$T/r2" --prev-images-dir ../r1
round_sum "$T/r1" "$T/r2"
keepers_of "after two rounds"
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
round_intact "$T/r1" "after the killed round"
round_intact "$T/r2" "after the killed round"
# shellcheck disable=SC2086
keepers_gone "after its target died" $KEEPERS

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
	round_not_complete "$T/r3" "the failed round (exit $rc)"
fi
