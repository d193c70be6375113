#!/bin/bash
# Post-copy, the destination's daemon dies after the commit: a 1 GiB lazyw is
# restored lazily and the lazy-pages daemon is killed (SIGKILL, by its pid)
# while the background transfer still runs. Its guardian kills the restored
# process with a clear message: it never runs on zero-filled memory. The
# source, committed, cannot resume either: the dump exits non-zero (it waits
# a bounded time for the daemon to come back) and the frozen source is gone.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_migrate 1024 read
wait_line "$T/lazy.log" 'acknowledged the commit' 10 || fail "the source never acknowledged the commit"
grep -q 'all pages arrived' "$T/lazy.log" && skip "every page had arrived before the daemon could be killed"
kill -KILL "$LAZY_PID"
"$WL/pidwait" "$LAZY_PID" 10 >/dev/null 2>&1 || fail "the daemon $LAZY_PID survived SIGKILL"
grep -q 'all pages arrived' "$T/lazy.log" && skip "every page had arrived before the daemon was killed"
"$WL/pidwait" "$RESTORED_PID" 10 >/dev/null 2>&1 ||
	fail "the restored process still runs 10 s after its daemon died (pages missing)"
grep -q 'killing it rather than let it run on missing memory' "$T/lazy.err" "$T/lazy.log" ||
	fail "the guardian said nothing, neither on the daemon's stderr nor in its log"
say "$(grep -h -m1 'killing it' "$T/lazy.err" "$T/lazy.log")"
grep -q '^PASS' "$OUT" && fail "the restored process passed a check it should never have reached"
"$WL/pidwait" "$DUMP_PID" 60 >/dev/null 2>&1 || fail "the dump still runs 60 s after the daemon died"
wait "$DUMP_PID"
rc=$?
[ "$rc" = 0 ] && fail "the dump exited 0 although the destination never got every page"
"$WL/pidwait" "$SRC_PID" 10 >/dev/null 2>&1 || fail "the committed source $SRC_PID still exists (it could resume)"
say "dump exited $rc: $(tail -n 1 "$T/dump.err")"
[ -z "$RESTORED_INIT" ] || "$WL/pidwait" "$RESTORED_INIT" 10 >/dev/null 2>&1 || fail "the restored init still runs"
assert_nothing_left
