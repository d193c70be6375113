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

interp_loop_check python "$PY" "$T/dict.py"
