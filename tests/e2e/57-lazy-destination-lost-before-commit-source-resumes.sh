#!/bin/bash
# Post-copy, the destination is lost before it commits: the lazy-pages daemon
# connects to the source and is killed (SIGKILL, by its pid) before any
# restore. The source resumes: the dump exits non-zero and the original
# process keeps running where it was, runs its steps and PASSes. A lazy
# restore afterwards finds no daemon, fails cleanly and creates nothing: the
# process runs exactly once.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
lazy_run 64 all
lazy_dump_start
lazy_daemon_start
wait_line "$T/dump.log" 'connected \(pull\)' 10 || fail "the daemon never connected to the source"
kill -KILL "$LAZY_PID"
"$WL/pidwait" "$DUMP_PID" 30 >/dev/null 2>&1 || fail "the dump still runs 30 s after the destination was lost"
wait "$DUMP_PID"
rc=$?
[ "$rc" = 0 ] && fail "the dump exited 0 although the destination never committed"
say "dump exited $rc: $(tail -n 1 "$T/dump.err")"
pid_alive "$SRC_PID" || fail "the source $SRC_PID is gone: the process was lost"
[ "$(proc_status_field "$SRC_PID" TracerPid)" = 0 ] || fail "the source is still traced"
expect_fail_cmd 'lazy-pages daemon|lazy-pages' "$FERRY" restore -D "$IMG" --lazy-pages -d --pidfile "$T/bad.pid"
[ -e "$T/bad.pid" ] && fail "the refused restore wrote a pid file"
RESTORED_PID=$SRC_PID
lazy_step_run
wl_expect_pass "$SRC_PID" "$OUT"
assert_nothing_left
