#!/bin/bash
# Restoring from a directory that does not exist fails with one line naming it.
. "$(dirname "$0")/../lib.sh"

expect_fail_cmd "$T/no-such-dir" "$FERRY" restore -D "$T/no-such-dir" -d --pidfile "$T/pid"
[ -e "$T/pid" ] && fail "a pid file was written"
assert_nothing_left
