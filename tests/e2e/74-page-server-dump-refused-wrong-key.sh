#!/bin/bash
# A dump to a page server that holds another key (or none) fails with one
# clear line, the target runs on untouched, the server writes nothing and
# serves the next dump, which holds the right key.
. "$(dirname "$0")/../lib.sh"

"$FERRY" dump --help 2>/dev/null | grep -q -- --page-server ||
	skip "ferry dump has no --page-server yet (the dump is not wired to the page-server sink)"

# ps_start DIR NAME [OPTIONS...]: a page server on a free port of ADDR (default
# 127.0.0.1), run by CMD_PREFIX (e.g. ip netns exec NS); sets PS_PORT, PS_PID.
ps_start()
{
	local dir=$1 name=$2 try
	shift 2
	for try in 1 2 3 4 5 6 7 8; do
		PS_PORT=$((20000 + RANDOM % 40000))
		_SEQ=$((_SEQ + 1))
		timeout -k 5 "$FERRY_TIMEOUT" ${CMD_PREFIX:-} "$FERRY" page-server -D "$dir" --port "$PS_PORT" \
			--address "${ADDR:-127.0.0.1}" -d --pidfile "$T/$name.pid" -v4 -o "$T/$name.log" "$@" \
			2>"$T/$name.$try.err" && break
		grep -q "in use" "$T/$name.$try.err" || fail "page-server failed: $(cat "$T/$name.$try.err")"
	done
	PS_PID=$(cat "$T/$name.pid") || fail "page-server -d wrote no pid file"
	track_pid "$PS_PID"
	pid_alive "$PS_PID" || fail "page-server $PS_PID is not running after -d"
}

head -c 32 /dev/urandom >"$T/key"
head -c 32 /dev/urandom >"$T/other"
ps_start "$T/dst" ps --auth-key "$T/key"
wl_start mem
wl_wait_ready
pid=$WL_PID
expect_fail_cmd "authentication failed" "$FERRY" dump -t "$pid" -D "$T/src/d1" --page-server \
	--address 127.0.0.1 --port "$PS_PORT" --auth-key "$T/other"
expect_fail_cmd "requires an auth key" "$FERRY" dump -t "$pid" -D "$T/src/d1" --page-server \
	--address 127.0.0.1 --port "$PS_PORT"
pid_alive "$pid" || fail "the target died after a refused dump"
[ -z "$(ls -A "$T/dst")" ] || fail "the server wrote something: $(ls -A "$T/dst")"
grep -q "authentication failed" "$T/ps.log" || fail "the server logged no authentication failure"

ferry_dump "$pid" "$T/src/d1" --page-server --address 127.0.0.1 --port "$PS_PORT" --auth-key "$T/key"
cp -n "$T"/src/d1/*.img "$T/dst/d1/" || fail "cannot copy the images"
ferry_restore "$T/dst/d1"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
exit 0
