#!/bin/bash
# A python3 interpreter looping over a large dict with time.sleep is dumped
# and restored, and goes on: its iteration count continues where it stopped
# and the dict's checksum is the one it had at start.
. "$(dirname "$0")/../lib.sh"

command -v "$PY" >/dev/null || skip "python3 is not installed"

cat >"$T/dict.py" <<'PYEOF'
import sys, time

out = open(sys.argv[1], "a", buffering=1)
N = 300000
table = {"key%d" % i: (i * 7919) % 1000003 for i in range(N)}


def checksum():
    c = 0
    for k, v in table.items():
        c = (c * 31 + v + len(k)) % 4294967291
    return c


expected = checksum()
out.write("# expected %d\n" % expected)
out.write("ready\n")
i = 0
while True:
    i += 1
    out.write("# iter %d %d\n" % (i, checksum()))
    time.sleep(0.05)
PYEOF

bg_start python "$PY" "$T/dict.py" "$T/python.out"
pid=$BG_PID
out=$T/python.out
wl_wait_ready "$pid" "$out"
wait_line "$out" '^# iter 5 ' || fail "python did not reach iteration 5"

ferry_dump "$pid" "$T/img"
last=$(sed -n 's/^# iter \([0-9]*\) .*/\1/p' "$out" | tail -n 1)
ferry_restore "$T/img"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"

wait_line "$out" "^# iter $((last + 1)) " || fail "no iteration $((last + 1)) after restore (last: $last)"
wait_line "$out" "^# iter $((last + 5)) " || fail "no iteration $((last + 5)) after restore"
expected=$(sed -n 's/^# expected //p' "$out")
bad=$(awk -v e="$expected" '$2 == "iter" && $4 != e' "$out" | head -n 3)
[ -z "$bad" ] || fail "checksum differs from $expected: $bad"
pid_alive "$pid" || fail "python exited after restore"
say "python went on from iteration $last to $(sed -n 's/^# iter \([0-9]*\) .*/\1/p' "$out" | tail -n 1), checksum $expected"
