#!/bin/bash
# `ferry untrack -t PID` ends the ferry-keeper that holds the dirty tracking of
# PID; the next pre-dump round copies everything and arms tracking again (a new
# keeper), so the round after it has holes again; restore still PASSes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

dirty_start

pre_dump_show "$T/r1"
keepers_of "after the first round"
step 1

_SEQ=$((_SEQ + 1))
run_ferry "untrack.$_SEQ" untrack -t "$pid" -v4 -o "$T/untrack.$_SEQ.log" ||
	fail "ferry untrack -t $pid failed: $(tail -n 3 "$T/untrack.$_SEQ.err")"
# shellcheck disable=SC2086
keepers_gone "after untrack" $KEEPERS
pid_alive "$pid" || fail "the target $pid is gone after untrack"

# nothing is tracked: the next round (its parent left to the default) copies
# every page, and arms tracking anew
step 2
pre_dump_show "$T/r2"
round_check "$T/r2" 2 none
keepers_of "after the round that follows untrack"
step 3
pre_dump_show "$T/r3"
parent=$("$PY" "$CHECK" field "$T/r3.json" parent_snapshot_id)
[ "$parent" = "$("$PY" "$CHECK" field "$T/r2.json" snapshot_id)" ] ||
	fail "the round after r2 does not name r2 as its parent (it names '$parent')"
round_check "$T/r3" 3 2

step 4
ferry_dump "$pid" "$T/final" --track-mem
# shellcheck disable=SC2086
keepers_end "after the final dump" $KEEPERS
restored_as_dumped "$T/final"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
