#!/bin/bash
# Post-copy, the source dies after the commit: a 1 GiB lazyw is restored
# lazily; once the source acknowledged the commit, and while the background
# transfer still runs, the dump process is killed (SIGKILL, by its pid): the
# frozen source dies with it (it can never resume after the commit). The
# restored process must not keep running on zero-filled memory: it is killed,
# with a clear message on the daemon's side, and the daemon exits non-zero.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_migrate 1024 read
wait_line "$T/lazy.log" 'acknowledged the commit' 10 || fail "the source never acknowledged the commit"
grep -q 'all pages arrived' "$T/lazy.log" && skip "every page had arrived before the source could be killed"
kill -KILL "$DUMP_PID"
wait "$DUMP_PID" 2>/dev/null
grep -q 'all pages arrived' "$T/lazy.log" && skip "every page had arrived before the source was killed"
"$WL/pidwait" "$SRC_PID" 10 >/dev/null 2>&1 || fail "the frozen source $SRC_PID survived its dump process"
"$WL/pidwait" "$RESTORED_PID" 40 >/dev/null 2>&1 ||
	fail "the restored process still runs 40 s after its source died (pages missing)"
"$WL/pidwait" "$LAZY_PID" 10 >/dev/null 2>&1 || fail "the daemon still runs after its source died"
grep -q 'all pages arrived' "$T/lazy.log" && fail "the daemon says all pages arrived, but its source died first"
grep -qiE 'killing|killed' "$T/lazy.err" "$T/lazy.log" ||
	fail "nothing says why the restored process was killed (lazy.err: $(tail -n 2 "$T/lazy.err"))"
say "$(grep -hiE -m1 'killing|killed' "$T/lazy.err" "$T/lazy.log")"
grep -q '^PASS' "$OUT" && fail "the restored process passed a check it should never have reached"
[ -z "$RESTORED_INIT" ] || "$WL/pidwait" "$RESTORED_INIT" 10 >/dev/null 2>&1 || fail "the restored init still runs"
assert_nothing_left
