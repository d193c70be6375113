#!/bin/bash
# Two "hosts": network namespaces made here, joined by a veth pair with
# 10.x addresses that exist only inside them. The page server runs in one,
# the dump in the other; the process restores exactly. The namespaces are
# removed at the end.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

ps_need_dump

two_hosts ps 10.199.7

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
