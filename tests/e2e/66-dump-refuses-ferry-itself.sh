#!/bin/bash
# ferry cannot dump itself: `ferry dump -t <its own pid>` fails with one line
# and leaves no image. (Its own pid is the one thing that is surely ferry: sh
# writes its pid, then execs ferry in the same process.)
. "$(dirname "$0")/../lib.sh"

expect_fail_cmd . sh -c 'echo $$ >"$2"; exec "$0" dump -t $$ -D "$1"' "$FERRY" "$T/img" "$T/self.pid"
self=$(cat "$T/self.pid")
grep -qE "$self|itself|ferry" <<<"$EXPECT_ERR" || fail "the error names neither the pid $self nor ferry: $EXPECT_ERR"
[ -e "$T/img/inventory.img" ] && fail "the refused dump left an inventory.img"
assert_nothing_left
