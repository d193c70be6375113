#!/bin/bash
# One page server takes two dumps at the same time (two processes, two
# image directories); both restore exactly, and the server keeps serving.
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

ps_start "$T/dst" ps
wl_start mem
wl_wait_ready
pid1=$WL_PID out1=$WL_OUT
wl_start counter
wl_wait_ready
pid2=$WL_PID out2=$WL_OUT
counter_wait_tick "$out2" 3 || fail "counter does not tick"

_SEQ=$((_SEQ + 1)); n1=$_SEQ
timeout -k 5 "$FERRY_TIMEOUT" "$FERRY" dump -t "$pid1" -D "$T/src/a" --page-server --address 127.0.0.1 \
	--port "$PS_PORT" -v4 -o "$T/dump.$n1.log" 2>"$T/dump.$n1.err" &
d1=$!
_SEQ=$((_SEQ + 1)); n2=$_SEQ
timeout -k 5 "$FERRY_TIMEOUT" "$FERRY" dump -t "$pid2" -D "$T/src/b" --page-server --address 127.0.0.1 \
	--port "$PS_PORT" -v4 -o "$T/dump.$n2.log" 2>"$T/dump.$n2.err" &
d2=$!
{ wait "$d1"; } 2>/dev/null || fail "dump of $pid1 failed: $(cat "$T/dump.$n1.err")"
{ wait "$d2"; } 2>/dev/null || fail "dump of $pid2 failed: $(cat "$T/dump.$n2.err")"
"$WL/pidwait" "$pid1" 10 >/dev/null 2>&1 && "$WL/pidwait" "$pid2" 10 >/dev/null 2>&1 ||
	fail "a dumped process still runs"
{ wait "$pid1" "$pid2"; } 2>/dev/null

for d in a b; do
	ls "$T"/dst/$d/pagemap-*.img >/dev/null 2>&1 || fail "the server holds no pagemap in $d"
	cp -n "$T"/src/$d/*.img "$T/dst/$d/" || fail "cannot copy the images of $d"
done
[ "$(grep -c 'committed' "$T/ps.log")" = 2 ] || fail "the server did not log two commits"
ferry_restore "$T/dst/a"
r1=$RESTORED_PID
ferry_restore "$T/dst/b"
r2=$RESTORED_PID
[ "$r1" = "$pid1" ] && [ "$r2" = "$pid2" ] || fail "restored pids $r1 $r2, dumped $pid1 $pid2"
wl_expect_pass "$r1" "$out1"
wl_expect_pass "$r2" "$out2"
pid_alive "$PS_PID" || fail "the page server died"
exit 0
