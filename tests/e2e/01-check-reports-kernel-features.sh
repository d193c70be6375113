#!/bin/bash
# ferry check reports the kernel features ferry relies on, one line each, and
# exits 0 on this machine, which has them all.
. "$(dirname "$0")/../lib.sh"

"$FERRY" check >"$T/check.log" 2>"$T/check.err.log"
rc=$?
cat "$T/check.log"
[ "$rc" = 0 ] || fail "ferry check exited $rc: $(cat "$T/check.err.log")"
[ "$(grep -c . "$T/check.log")" -ge 2 ] || fail "ferry check printed fewer than two lines"
