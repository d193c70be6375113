#!/bin/bash
# Two "hosts": network namespaces made here, joined by a veth pair with
# 10.x addresses that exist only inside them. The page server runs in one,
# the dump in the other; the process restores exactly. The namespaces are
# removed at the end.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

ps_need_dump

command -v ip >/dev/null || skip "no ip command (iproute2)"
NS_SRC=ferry-ps-src-$$
NS_DST=ferry-ps-dst-$$
netns_cleanup()
{
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
}
trap 'rc=$?; netns_cleanup; (exit $rc); cleanup' EXIT
ip netns add "$NS_SRC" || skip "cannot create network namespaces"
ip netns add "$NS_DST" || fail "cannot create a second network namespace"
ip link add veth-s$$ netns "$NS_SRC" type veth peer name veth-d$$ netns "$NS_DST" ||
	fail "cannot create the veth pair"
ip -n "$NS_SRC" addr add 10.199.7.1/24 dev veth-s$$ && ip -n "$NS_SRC" link set veth-s$$ up &&
	ip -n "$NS_SRC" link set lo up || fail "cannot configure $NS_SRC"
ip -n "$NS_DST" addr add 10.199.7.2/24 dev veth-d$$ && ip -n "$NS_DST" link set veth-d$$ up &&
	ip -n "$NS_DST" link set lo up || fail "cannot configure $NS_DST"

CMD_PREFIX="ip netns exec $NS_DST" ADDR=10.199.7.2 ps_start "$T/dst" ps
wl_ready mem
pid=$WL_PID
# the dumper runs in the source namespace; the workload stays where it is
ferry_dump_ns()
{
	_SEQ=$((_SEQ + 1))
	{ timeout --foreground -k 5 "$FERRY_TIMEOUT" ip netns exec "$NS_SRC" "$FERRY" dump -t "$pid" \
		-D "$T/src/d1" "${PS_OPTS[@]}" -v4 \
		-o "$T/dump.$_SEQ.log" 2>"$T/dump.$_SEQ.err"; } 2>/dev/null ||
		fail "dump across namespaces failed: $(cat "$T/dump.$_SEQ.err")"
}
ferry_dump_ns
"$WL/pidwait" "$pid" 10 >/dev/null 2>&1 || fail "target $pid still runs after dump"
wait "$pid" 2>/dev/null
grep -q "10.199.7.1" "$T/ps.log" || fail "the server did not see the client at 10.199.7.1"
ps_restore_check d1
kill -TERM "$PS_PID"
"$WL/pidwait" "$PS_PID" 10 >/dev/null 2>&1 || fail "page-server did not stop"
exit 0
