#!/bin/bash
# tests/demo.sh BUILD: checkpoint a counting process and bring it back.
#
# Starts the counter workload (it writes a tick to a file now and then), dumps
# it to an image directory (which ends the process), shows the image, restores
# it with the same pid and shows it counting on. Exits non-zero if any step fails.

set -u
# shellcheck source=tests/procs.sh
. "$(dirname "$0")/procs.sh"

if [ $# != 1 ]; then
	echo "usage: tests/demo.sh BUILD" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
FERRY=$BUILD/ferry
WL=$BUILD/tests/workloads
for f in "$FERRY" "$WL/counter" "$WL/waitfor" "$WL/pidwait"; do
	[ -x "$f" ] || { echo "demo: $f is not built (run make first)" >&2; exit 1; }
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
OUT=$DIR/counter.out
PID=""
START=""


# Kill the counter only while it is still the process this demo started or restored.
cleanup()
{
	if [ -n "$PID" ] && [ -n "$START" ] && [ "$(proc_starttime "$PID")" = "$START" ]; then
		kill -KILL "$PID" 2>/dev/null
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


step()
{
	printf '\n==> %s\n' "$*"
}

die()
{
	echo "demo: $*" >&2
	exit 1
}

last_tick()
{
	sed -n 's/^# tick \([0-9][0-9]*\).*/\1/p' "$OUT" | tail -n 1
}

wait_tick()
{
	"$WL/waitfor" "$OUT" "^# tick $1( |\$)" 20 >/dev/null || die "no tick $1 in $OUT"
}

show_ticks()
{
	grep '^# tick' "$OUT" | tail -n "$1" | sed 's/^/    /'
}

step "start the counter workload; it appends ticks to $OUT"
(close_extra_fds && cd "$DIR" && TMPDIR=$DIR exec "$WL/counter" "$OUT") </dev/null >"$DIR/counter.log" 2>&1 &
PID=$!
START=$(proc_starttime "$PID")
"$WL/waitfor" "$OUT" '^ready$' 20 >/dev/null || die "the counter did not start"
wait_tick 3
echo "    pid $PID, its last ticks:"
show_ticks 3

step "ferry dump -t $PID -D $DIR/img   (the process ends once its state is saved)"
# (ferry's stderr goes to ours, the shell's own is muted: it would report the
# counter, its background job, as "Killed")
{ "$FERRY" dump -t "$PID" -D "$DIR/img" 2>&3; } 3>&2 2>/dev/null || die "ferry dump failed"
"$WL/pidwait" "$PID" 10 || die "pid $PID still runs after the dump"
wait "$PID" 2>/dev/null
START=""
LAST=$(last_tick)
echo "    pid $PID is gone; last tick: $LAST"
echo "    image files:"
ls -l "$DIR/img" | awk 'NR > 1 { printf "      %-22s %10s bytes\n", $NF, $5 }'

step "ferry show $DIR/img   (the summary; it goes on to decode every image)"
SHOW=$("$FERRY" show "$DIR/img") || die "ferry show failed"
sed -n '/^---/q; /./p' <<<"$SHOW" | head -n 20 | sed 's/^/    /'

step "ferry restore -D $DIR/img -d --pidfile $DIR/pid"
"$FERRY" restore -D "$DIR/img" -d --pidfile "$DIR/pid" || die "ferry restore failed"
NEW=$(tr -d '[:space:]' <"$DIR/pid")
START=$(proc_starttime "$NEW")
[ -n "$START" ] || die "restored pid $NEW is not running"
[ "$NEW" = "$PID" ] || die "restored with pid $NEW, dumped $PID"
wait_tick $((LAST + 3))
echo "    running again as pid $NEW, counting on from tick $LAST:"
show_ticks 4

step "ask it to check its own state (SIGUSR2)"
kill -USR2 "$PID"
"$WL/waitfor" "$OUT" '^(PASS|FAIL.*)$' 20 >/dev/null || die "no answer to SIGUSR2"
"$WL/pidwait" "$PID" 10 >/dev/null
START=""
RESULT=$(grep -E '^(PASS|FAIL)' "$OUT" | tail -n 1)
echo "    $RESULT"
[ "$RESULT" = PASS ] || die "the restored counter reports: $RESULT"

step "done: the process was saved, ended, and brought back with the same pid and state"
