#!/bin/bash
# A workload started with `ferry run` (init as pid 1, the workload as pid 2 of a
# fresh pid namespace) is dumped: nothing of the original remains, its init
# included. It is restored into fresh namespaces as pid 2 under a fresh init,
# goes on where it was, and signals from outside still reach it.
. "$(dirname "$0")/../lib.sh"

out=$T/counter.out
(close_extra_fds && cd "$T" && exec timeout --foreground -k 5 "$FERRY_TIMEOUT" \
	"$FERRY" run --pidfile "$T/run.pid" -- "$WL/counter" "$out") </dev/null >"$T/run.log" 2>&1 ||
	fail "ferry run failed: $(tail -n 3 "$T/run.log")"
[ -s "$T/run.pid" ] || fail "ferry run wrote no pid file"
pid=$(tr -d '[:space:]' <"$T/run.pid")
track_pid "$pid"
init=$(proc_ppid "$pid")
track_pid "$init"
wl_wait_ready "$pid" "$out"

[ "$(proc_status_field "$pid" NSpid | awk '{ print $NF }')" = 2 ] ||
	fail "the command is not pid 2 in its namespace (NSpid: $(proc_status_field "$pid" NSpid))"
[ "$(proc_status_field "$init" NSpid | awk '{ print $NF }')" = 1 ] ||
	fail "its parent $init is not pid 1 of the namespace (NSpid: $(proc_status_field "$init" NSpid))"
for ns in pid mnt time; do
	[ "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink /proc/self/ns/$ns)" ] ||
		fail "ferry run did not give the command its own $ns namespace"
done
counter_wait_tick "$out" 2 || fail "counter did not reach tick 2"

ferry_dump "$pid" "$T/img"
"$WL/pidwait" "$init" 10 >/dev/null 2>&1 || fail "the original init $init still runs after the dump"
assert_nothing_left
last=$(counter_last_tick "$out")

ferry_restore "$T/img"
new=$RESTORED_PID
newinit=$(proc_ppid "$new")
track_pid "$newinit"
[ "$(proc_status_field "$new" NSpid | awk '{ print $NF }')" = 2 ] ||
	fail "the restored process is not pid 2 in its namespace (NSpid: $(proc_status_field "$new" NSpid))"
[ "$(proc_status_field "$newinit" NSpid | awk '{ print $NF }')" = 1 ] ||
	fail "its parent $newinit is not pid 1 of the namespace"
for ns in pid mnt time; do
	[ "$(readlink "/proc/$new/ns/$ns")" != "$(readlink /proc/self/ns/$ns)" ] ||
		fail "the restored process shares the caller's $ns namespace"
done

counter_wait_tick "$out" $((last + 1)) || fail "no tick $((last + 1)) after restore (last: $last)"
say "restored as $new (pid 2 under init $newinit), ticks went on from $last"
wl_expect_pass "$new" "$out"
