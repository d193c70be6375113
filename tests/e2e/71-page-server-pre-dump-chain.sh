#!/bin/bash
# Pre-copy through a page server: two pre-dump rounds and the final dump go
# to one server, which keeps the chain (each round's holes checked against
# its parent there); the final image restores exactly.
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
"$FERRY" pre-dump --help 2>/dev/null | grep -q -- --page-server ||
	skip "ferry pre-dump has no --page-server yet"

ps_start "$T/dst" ps
wl_start counter
wl_wait_ready
pid=$WL_PID
counter_wait_tick "$WL_OUT" 2 || fail "counter does not tick"
PS="--page-server --address 127.0.0.1 --port $PS_PORT"
run_ferry pre1 pre-dump -t "$pid" -D "$T/src/p1" $PS -v4 -o "$T/pre1.log" ||
	fail "pre-dump 1: $(cat "$T/pre1.err")"
run_ferry pre2 pre-dump -t "$pid" -D "$T/src/p2" --prev-images-dir ../p1 $PS -v4 -o "$T/pre2.log" ||
	fail "pre-dump 2: $(cat "$T/pre2.err")"
ferry_dump "$pid" "$T/src/d" --prev-images-dir ../p2 --track-mem $PS
for d in p1 p2 d; do
	cp -n "$T"/src/$d/*.img "$T/dst/$d/" || fail "cannot copy the images of $d"
done
grep -q "open p2/pid .*parent p1" "$T/ps.log" || fail "the server did not link p2 to p1"
grep -q "open d/pid .*parent p2" "$T/ps.log" || fail "the server did not link d to p2"
ferry_restore "$T/dst/d"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
exit 0
