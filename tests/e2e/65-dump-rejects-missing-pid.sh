#!/bin/bash
# Dumping a pid that does not exist fails with one line naming it and leaves
# no image behind.
. "$(dirname "$0")/../lib.sh"

# a pid that existed a moment ago and is free now
sleep 0 &
gone=$!
wait "$gone"
pid_alive "$gone" && skip "pid $gone was reused at once"

expect_fail_cmd "$gone" "$FERRY" dump -t "$gone" -D "$T/img"
[ -e "$T/img/inventory.img" ] && fail "the failed dump left an inventory.img"
assert_nothing_left
