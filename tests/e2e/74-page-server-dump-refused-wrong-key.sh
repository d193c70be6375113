#!/bin/bash
# A dump to a page server that holds another key (or none) fails with one
# clear line, the target runs on untouched, the server writes nothing and
# serves the next dump, which holds the right key.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

head -c 32 /dev/urandom >"$T/key"
head -c 32 /dev/urandom >"$T/other"
ps_dump_server --auth-key "$T/key"
wl_ready mem
pid=$WL_PID
expect_fail_cmd "authentication failed" "$FERRY" dump -t "$pid" -D "$T/src/d1" "${PS_OPTS[@]}" \
	--auth-key "$T/other"
expect_fail_cmd "requires an auth key" "$FERRY" dump -t "$pid" -D "$T/src/d1" "${PS_OPTS[@]}"
pid_alive "$pid" || fail "the target died after a refused dump"
[ -z "$(ls -A "$T/dst")" ] || fail "the server wrote something: $(ls -A "$T/dst")"
grep -q "authentication failed" "$T/ps.log" || fail "the server logged no authentication failure"

ferry_dump "$pid" "$T/src/d1" "${PS_OPTS[@]}" --auth-key "$T/key"
ps_restore_check d1
exit 0
