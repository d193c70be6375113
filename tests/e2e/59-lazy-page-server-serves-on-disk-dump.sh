#!/bin/bash
# `ferry page-server --lazy-pages -D src` serves an on-disk dump to a remote
# lazy restore: lazyw (64 MiB) is dumped the plain way into src, copied to
# dst (the restore reads what is not lazy from there); `ferry lazy-pages
# --page-server -D dst` fetches the private memory from the server (its log
# counts the pages it served), `ferry restore -D dst --lazy-pages` runs the process
# at once. Every step is exact, the daemon exits once every page arrived, and
# the server exits 0 when the destination has them all.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
"$FERRY" page-server --help 2>/dev/null | grep -q -- --lazy-pages || skip "ferry page-server has no --lazy-pages"
wl_start lazyw 64 all
wl_wait_ready
OUT=$WL_OUT
pid=$WL_PID
ferry_dump "$pid" "$T/src"
cp -a "$T/src" "$IMG" || fail "cannot copy the images"
PORT=$(free_port)
(close_extra_fds && cd "$T" && exec "$FERRY" page-server --lazy-pages -D "$T/src" --address 127.0.0.1 \
	--port "$PORT" -v4 -o "$T/ps.log") </dev/null >/dev/null 2>"$T/ps.err" &
PS_PID=$!
track_pid "$PS_PID"
wait_line "$T/ps.log" 'serving|error: ' 20 || fail "the page server does not serve within 20 s: $(cat "$T/ps.err")"
lazy_daemon_start
lazy_restore
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
lazy_step_run
"$WL/pidwait" "$LAZY_PID" 60 >/dev/null 2>&1 || fail "the lazy-pages daemon still runs 60 s after the restore"
grep -q 'all pages arrived' "$T/lazy.log" || fail "the daemon exited before all pages arrived: $(tail -n 2 "$T/lazy.err")"
"$WL/pidwait" "$PS_PID" 30 >/dev/null 2>&1 || fail "the page server still runs 30 s after the destination had every page"
wait "$PS_PID"
rc=$?
[ "$rc" = 0 ] || fail "ferry page-server --lazy-pages exited $rc: $(tail -n 2 "$T/ps.err")"
[ "$(lazy_stat pages_background)" -gt 0 ] || fail "no page came in the background"
served=$(sed -n 's/.*lazy source: \([0-9]*\) pages served.*/\1/p' "$T/ps.log")
[ "${served:-0}" -gt 0 ] || fail "the page server's log does not say it served pages"
say "the page server served $served pages"
wl_expect_pass "$RESTORED_PID" "$OUT"
assert_nothing_left
