#!/bin/bash
# A stopped target (SIGSTOP) is refused with a one-line message and left
# exactly as it was: still stopped, and fine once continued.
. "$(dirname "$0")/../lib.sh"

wl_start mem
wl_wait_ready
kill -STOP "$WL_PID"
wait_state "$WL_PID" T || fail "target $WL_PID did not stop"
refused_dump_check "stop"
case $(proc_status_field "$WL_PID" State) in
T*) ;;
*) fail "target $WL_PID is no longer stopped: $(proc_status_field "$WL_PID" State)" ;;
esac
kill -CONT "$WL_PID"
wait_state "$WL_PID" SR || fail "target $WL_PID did not continue"
wl_expect_pass "$WL_PID" "$WL_OUT"
