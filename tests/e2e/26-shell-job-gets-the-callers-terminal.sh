#!/bin/bash
# A process whose stdio is a terminal: dump refuses it without --shell-job,
# dumps it with --shell-job, and restore --shell-job gives it the terminal of
# the restorer (a pseudo-terminal made by script(1)).
. "$(dirname "$0")/../lib.sh"

command -v script >/dev/null || skip "script (util-linux) is not installed"
OUT=$T/counter.out
bg_start script-src script -q -c "exec $WL/counter $OUT" /dev/null
wait_line "$OUT" '^ready$' "$READY_TIMEOUT" || fail "counter under script(1) not ready"
PID=$(pgrep -P "$BG_PID" -x counter)
[ -n "$PID" ] || fail "no counter under script(1) pid $BG_PID"
track_pid "$PID"
readlink "/proc/$PID/fd/0" | grep -q '^/dev/pts/' || fail "fd 0 of $PID is not a terminal"

expect_fail_cmd 'fd 0 is a terminal.*--shell-job' "$FERRY" dump -t "$PID" -D "$T/img"
pid_alive "$PID" || fail "the refused dump harmed pid $PID"

"$FERRY" dump -t "$PID" -D "$T/img" --shell-job -v4 -o "$T/dump.log" ||
	fail "dump --shell-job failed: $(tail -1 "$T/dump.log")"
"$WL/pidwait" "$PID" 10 >/dev/null || fail "pid $PID still runs after the dump"

expect_fail_cmd 'terminal.*--shell-job' "$FERRY" restore -D "$T/img" -d

bg_start script-dst script -q -c "exec $FERRY restore -D $T/img --shell-job -v4 -o $T/restore.log" /dev/null
wait_line "$T/restore.log" 'restored in' 20 || fail "restore --shell-job: $(tail -1 "$T/restore.log")"
track_pid "$PID"
tty=$(readlink "/proc/$PID/fd/1")
case "$tty" in
/dev/pts/*) ;;
*) fail "restored fd 1 is $tty, not a terminal" ;;
esac
wl_expect_pass "$PID" "$OUT"
