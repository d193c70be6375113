#!/bin/bash
# Post-copy with one command on the destination: `ferry restore --lazy-pages
# --page-server --address --port` starts the lazy-pages daemon itself (no
# `ferry lazy-pages` first). The restored process runs at once, its pages
# still on the source; its steps (writes before arrival, fork, mremap, munmap,
# madvise) and the final check of every page are exact; the daemon, whose log
# joins the restore's, exits once every page arrived, and the dump exits 0.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
"$FERRY" restore --help | grep -q -- --page-server || skip "ferry restore has no --page-server"
lazy_run 64 all
lazy_dump_start
{ timeout --foreground -k 5 "$FERRY_TIMEOUT" "$FERRY" restore -D "$IMG" --lazy-pages \
	--page-server --address "$LAZY_ADDR" --port "$PORT" --prefetch-after 1000 -d \
	--pidfile "$T/restore.pid" -v4 -o "$T/restore.log" </dev/null >/dev/null 2>"$T/restore.err"; } \
	2>/dev/null || fail "ferry restore --lazy-pages --page-server failed: $(tail -n 3 "$T/restore.err")"
RESTORED_PID=$(tr -d '[:space:]' <"$T/restore.pid")
track_pid "$RESTORED_PID"
RESTORED_INIT=$(proc_ppid "$RESTORED_PID")
track_pid "$RESTORED_INIT"
# the daemon: the process left running with the restore's command line
LAZY_PID=$(pgrep -f -- "restore -D $IMG --lazy-pages --page-server" | head -n 1)
[ -n "$LAZY_PID" ] || fail "no lazy-pages daemon runs after ferry restore --page-server returned"
track_pid "$LAZY_PID"
grep -q 'handed over' "$T/restore.log" || fail "the restore's log does not show the handover"
lazy_step_run
"$WL/pidwait" "$LAZY_PID" 60 >/dev/null 2>&1 || fail "the daemon still runs 60 s after the restore"
grep -q 'all pages arrived' "$T/restore.log" ||
	fail "the daemon exited before all pages arrived: $(grep -m1 'error: ' "$T/restore.log")"
"$WL/pidwait" "$DUMP_PID" 30 >/dev/null 2>&1 || fail "the dump still runs after every page arrived"
wait "$DUMP_PID" || fail "ferry dump --lazy-pages exited non-zero: $(tail -n 3 "$T/dump.err")"
"$WL/pidwait" "$SRC_PID" 10 >/dev/null 2>&1 || fail "the frozen source $SRC_PID still exists"
wl_expect_pass "$RESTORED_PID" "$OUT"
say "$(grep -m1 'all pages arrived' "$T/restore.log" | sed 's/^([0-9.]*) info: //')"
