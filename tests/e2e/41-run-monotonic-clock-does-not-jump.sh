#!/bin/bash
# A python3 process started with `ferry run` reads CLOCK_MONOTONIC before the
# dump and after the restore: the readings differ by no more than the real
# time that passed (plus a margin) and never go back.
. "$(dirname "$0")/../lib.sh"

command -v "$PY" >/dev/null || skip "python3 is not installed"
MARGIN=1.0

cat >"$T/mono.py" <<'PYEOF'
import sys, time

out = open(sys.argv[1], "a", buffering=1)
out.write("ready\n")
i = 0
while True:
    i += 1
    out.write("# mono %d %.6f %.6f\n" % (i, time.monotonic(), time.time()))
    time.sleep(0.05)
PYEOF

out=$T/mono.out
(close_extra_fds && cd "$T" && exec timeout --foreground -k 5 "$FERRY_TIMEOUT" \
	"$FERRY" run --pidfile "$T/run.pid" -- "$PY" "$T/mono.py" "$out") </dev/null >"$T/run.log" 2>&1 ||
	fail "ferry run failed: $(tail -n 3 "$T/run.log")"
[ -s "$T/run.pid" ] || fail "ferry run wrote no pid file"
pid=$(tr -d '[:space:]' <"$T/run.pid")
track_pid "$pid"
track_pid "$(proc_ppid "$pid")"
wl_wait_ready "$pid" "$out"
wait_line "$out" '^# mono 5 ' || fail "python did not reach reading 5"

ferry_dump "$pid" "$T/img"
last=$(awk '$2 == "mono" { n = $3 } END { print n }' "$out")
ferry_restore "$T/img"
track_pid "$(proc_ppid "$RESTORED_PID")"
wait_line "$out" "^# mono $((last + 3)) " || fail "no reading $((last + 3)) after restore (last: $last)"
[ "$(readlink "/proc/$RESTORED_PID/ns/time")" != "$(readlink /proc/self/ns/time)" ] ||
	fail "the restored process is not in a time namespace of its own"

verdict=$(awk -v last="$last" -v margin="$MARGIN" '
	$2 == "mono" { mono[$3] = $4; wall[$3] = $5 }
	END {
		a = last; b = last + 1
		dm = mono[b] - mono[a]; dw = wall[b] - wall[a]
		printf "monotonic +%.3f s, real +%.3f s across the dump", dm, dw
		if (dm < 0) { print ": monotonic went back"; exit 1 }
		if (dm > dw + margin) { print ": monotonic jumped"; exit 1 }
		for (i = b + 1; i <= last + 3; i++)
			if (mono[i] < mono[i - 1]) { print ": monotonic went back after restore"; exit 1 }
	}' "$out") || fail "$verdict"
say "$verdict"
