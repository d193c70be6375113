#!/bin/bash
# A pre-copy round whose images directory runs out of space (a 2 MiB tmpfs,
# almost full) fails with one clear line, leaves no image that says it is
# complete, leaves the earlier round (on a normal directory) untouched and no
# ferry-keeper behind, and the target runs on unharmed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

SMALL=$T/small
mkdir "$SMALL" || fail "cannot make $SMALL"
mount -t tmpfs -o size=2m ferry-e2e-small "$SMALL" 2>"$T/mount.err" ||
	skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
# unmount before lib.sh's cleanup removes T, keeping the test's exit status
# shellcheck disable=SC2154
trap 'rc=$?; umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null; (exit $rc); cleanup' EXIT

dirty_start

_SEQ=$((_SEQ + 1))
run_ferry "predump.$_SEQ" pre-dump -t "$pid" -D "$T/r1" -v4 -o "$T/predump.$_SEQ.log" ||
	fail "ferry pre-dump -t $pid -D r1 failed: $(tail -n 3 "$T/predump.$_SEQ.err")"
round_sum "$T/r1"
keepers_of "after the first round"

# leave 16 KiB free: less than the pages the second round must write
dd if=/dev/zero of="$SMALL/filler" bs=4096 count=$((2 * 256 - 4)) status=none 2>/dev/null
[ "$(df -B1 --output=avail "$SMALL" | tail -n 1)" -le 16384 ] || fail "cannot fill $SMALL"
step 1
step 2
expect_fail_cmd 'space|ENOSPC' "$FERRY" pre-dump -t "$pid" -D "$SMALL/r2" --prev-images-dir ../../r1
round_not_complete "$SMALL/r2" "the failed round"

pid_alive "$pid" || fail "the target $pid is gone after the failed round"
[ "$(proc_status_field "$pid" TracerPid)" = 0 ] || fail "the target $pid is still traced"
round_intact "$T/r1" "after the failed round"
# shellcheck disable=SC2086
keepers_gone "after the failed round" $KEEPERS

step 3
wl_expect_pass "$pid" "$WL_OUT"
