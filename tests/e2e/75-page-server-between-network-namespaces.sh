#!/bin/bash
# Two "hosts": network namespaces made here, joined by a veth pair with
# 10.x addresses that exist only inside them. The page server runs in one,
# the dump in the other; the process restores exactly. The namespaces are
# removed at the end.
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

command -v ip >/dev/null || skip "no ip command (iproute2)"
NS_SRC=ferry-ps-src-$$
NS_DST=ferry-ps-dst-$$
netns_cleanup()
{
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
}
trap 'netns_cleanup; cleanup' EXIT
ip netns add "$NS_SRC" || skip "cannot create network namespaces"
ip netns add "$NS_DST" || fail "cannot create a second network namespace"
ip link add veth-s$$ netns "$NS_SRC" type veth peer name veth-d$$ netns "$NS_DST" ||
	fail "cannot create the veth pair"
ip -n "$NS_SRC" addr add 10.199.7.1/24 dev veth-s$$ && ip -n "$NS_SRC" link set veth-s$$ up &&
	ip -n "$NS_SRC" link set lo up || fail "cannot configure $NS_SRC"
ip -n "$NS_DST" addr add 10.199.7.2/24 dev veth-d$$ && ip -n "$NS_DST" link set veth-d$$ up &&
	ip -n "$NS_DST" link set lo up || fail "cannot configure $NS_DST"

CMD_PREFIX="ip netns exec $NS_DST" ADDR=10.199.7.2 ps_start "$T/dst" ps
wl_start mem
wl_wait_ready
pid=$WL_PID
# the dumper runs in the source namespace; the workload stays where it is
ferry_dump_ns()
{
	_SEQ=$((_SEQ + 1))
	{ timeout --foreground -k 5 "$FERRY_TIMEOUT" ip netns exec "$NS_SRC" "$FERRY" dump -t "$pid" \
		-D "$T/src/d1" --page-server --address 10.199.7.2 --port "$PS_PORT" -v4 \
		-o "$T/dump.$_SEQ.log" 2>"$T/dump.$_SEQ.err"; } 2>/dev/null ||
		fail "dump across namespaces failed: $(cat "$T/dump.$_SEQ.err")"
}
ferry_dump_ns
"$WL/pidwait" "$pid" 10 >/dev/null 2>&1 || fail "target $pid still runs after dump"
wait "$pid" 2>/dev/null
grep -q "10.199.7.1" "$T/ps.log" || fail "the server did not see the client at 10.199.7.1"
cp -n "$T"/src/d1/*.img "$T/dst/d1/" || fail "cannot copy the images"
ferry_restore "$T/dst/d1"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
kill -TERM "$PS_PID"
"$WL/pidwait" "$PS_PID" 10 >/dev/null 2>&1 || fail "page-server did not stop"
exit 0
