#!/bin/bash
# ferry show --json prints JSON that parses, for the directory and for every
# image file, with the option before or after the path.
. "$(dirname "$0")/../lib.sh"

wl_start counter
wl_wait_ready
pid=$WL_PID
ferry_dump "$pid" "$T/img"

# json_ok FILE: parses, and holds the dumped pid somewhere
json_ok()
{
	"$PY" -m json.tool "$1" >/dev/null 2>&1 || return 1
	"$PY" - "$1" "$pid" <<'PYEOF'
import json, sys
pid = int(sys.argv[2])
def walk(v):
    if isinstance(v, dict):
        return any(walk(x) for x in v.values())
    if isinstance(v, list):
        return any(walk(x) for x in v)
    return v == pid or v == str(pid)
sys.exit(0 if walk(json.load(open(sys.argv[1]))) else 1)
PYEOF
}

"$FERRY" show "$T/img" --json >"$T/show.json" 2>"$T/show.err.log" ||
	fail "ferry show DIR --json failed: $(cat "$T/show.err.log")"
"$PY" -m json.tool "$T/show.json" >/dev/null 2>&1 ||
	fail "ferry show DIR --json is not JSON: $(head -c 300 "$T/show.json")"
json_ok "$T/show.json" || fail "ferry show DIR --json does not hold pid $pid"

"$FERRY" show --json "$T/img" >"$T/show2.json" 2>"$T/show.err.log" ||
	fail "ferry show --json DIR failed: $(cat "$T/show.err.log")"
"$PY" -m json.tool "$T/show2.json" >/dev/null 2>&1 || fail "ferry show --json DIR is not JSON"

for f in "$T"/img/*; do
	"$FERRY" show "$f" --json >"$T/file.json" 2>"$T/show.err.log" ||
		fail "ferry show ${f##*/} --json failed: $(cat "$T/show.err.log")"
	"$PY" -m json.tool "$T/file.json" >/dev/null 2>&1 ||
		fail "ferry show ${f##*/} --json is not JSON: $(head -c 300 "$T/file.json")"
done
