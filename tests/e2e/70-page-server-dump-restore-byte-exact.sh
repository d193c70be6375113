#!/bin/bash
# A dump sent through `ferry page-server` on loopback: the memory lands only
# on the server (DIR/<name>/pagemap-PID.img + pages-PID.img, nothing hidden
# left over), the source directory holds the rest, and the two together
# restore a process whose every mapping is exact (the mem workload checks
# every byte it wrote).
. "$(dirname "$0")/../lib.sh"

"$FERRY" dump --help 2>/dev/null | grep -q -- --page-server ||
	skip "ferry dump has no --page-server yet (the dump is not wired to the page-server sink)"

# ps_start DIR [OPTIONS...]: a page server on a free loopback port; sets PS_PORT, PS_PID.
ps_start()
{
	local dir=$1 try
	shift
	for try in 1 2 3 4 5 6 7 8; do
		PS_PORT=$((20000 + RANDOM % 40000))
		run_ferry "ps.$try" page-server -D "$dir" --port "$PS_PORT" --address 127.0.0.1 \
			-d --pidfile "$T/ps.pid" -v4 -o "$T/ps.log" "$@" && break
		grep -q "in use" "$T/ps.$try.err" || fail "page-server failed: $(cat "$T/ps.$try.err")"
	done
	PS_PID=$(cat "$T/ps.pid") || fail "page-server -d wrote no pid file"
	track_pid "$PS_PID"
	pid_alive "$PS_PID" || fail "page-server $PS_PID is not running after -d"
}

ps_start "$T/dst"
wl_start mem
wl_wait_ready
pid=$WL_PID
ferry_dump "$pid" "$T/src/d1" --page-server --address 127.0.0.1 --port "$PS_PORT"

ls "$T"/src/d1/pages-*.img >/dev/null 2>&1 && fail "the page data was written locally too"
ls "$T"/dst/d1/pagemap-*.img >/dev/null 2>&1 || fail "the server holds no pagemap: $(ls -A "$T/dst" "$T/dst/d1" 2>&1 | tr '\n' ' ')"
ls "$T"/dst/d1/pages-*.img >/dev/null 2>&1 || fail "the server holds no pages file"
leftover=$(ls -A "$T/dst" | grep -v '^d1$')
[ -z "$leftover" ] || fail "the server left $leftover in its directory"
grep -q "committed d1/pid" "$T/ps.log" || fail "the server logged no commit"

# the non-memory images travel another way (scp in real life)
cp -n "$T"/src/d1/*.img "$T/dst/d1/" || fail "cannot copy the non-memory images"
"$FERRY" show "$T/dst/d1" >"$T/show.out" 2>&1 || fail "ferry show of the server's directory failed: $(tail -n 2 "$T/show.out")"
ferry_restore "$T/dst/d1"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
pid_alive "$PS_PID" || fail "the page server died"
exit 0
