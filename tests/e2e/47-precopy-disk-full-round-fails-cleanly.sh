#!/bin/bash
# A pre-copy round whose images directory runs out of space (a 2 MiB tmpfs,
# almost full) fails with one clear line, leaves no image that says it is
# complete, leaves the earlier round (on a normal directory) untouched and no
# ferry-keeper behind, and the target runs on unharmed.
. "$(dirname "$0")/../lib.sh"

CHECK=$(dirname "$0")/../precopy_check.py

SMALL=$T/small
mkdir "$SMALL" || fail "cannot make $SMALL"
mount -t tmpfs -o size=2m ferry-e2e-small "$SMALL" 2>"$T/mount.err" ||
	skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
# unmount before lib.sh's cleanup removes T, keeping the test's exit status
# shellcheck disable=SC2154
trap 'rc=$?; umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null; (exit $rc); cleanup' EXIT

# step K: the workload performs its step K.
step()
{
	kill -USR1 "$pid" || fail "cannot signal $pid for step $1"
	wait_line "$WL_OUT" "^# step $1 done\$" || fail "step $1 not done within $PASS_TIMEOUT s"
}

wl_start dirty
wl_wait_ready
pid=$WL_PID

_SEQ=$((_SEQ + 1))
run_ferry "predump.$_SEQ" pre-dump -t "$pid" -D "$T/r1" -v4 -o "$T/predump.$_SEQ.log" ||
	fail "ferry pre-dump -t $pid -D r1 failed: $(tail -n 3 "$T/predump.$_SEQ.err")"
(cd "$T/r1" && md5sum ./* >"$T/r1.md5") || fail "cannot checksum r1"
keepers=$("$PY" "$CHECK" keepers "$pid")
[ -n "$keepers" ] || fail "no ferry-keeper tracks $pid after the first round"

# leave 16 KiB free: less than the pages the second round must write
dd if=/dev/zero of="$SMALL/filler" bs=4096 count=$((2 * 256 - 4)) status=none 2>/dev/null
[ "$(df -B1 --output=avail "$SMALL" | tail -n 1)" -le 16384 ] || fail "cannot fill $SMALL"
step 1
step 2
expect_fail_cmd 'space|ENOSPC' "$FERRY" pre-dump -t "$pid" -D "$SMALL/r2" --prev-images-dir ../../r1
if [ -e "$SMALL/r2/inventory.img" ] && "$FERRY" show --json "$SMALL/r2" >"$T/r2.json" 2>/dev/null &&
	[ "$("$PY" "$CHECK" field "$T/r2.json" complete)" = True ]; then
	fail "the failed round left an inventory.img that says complete"
fi

pid_alive "$pid" || fail "the target $pid is gone after the failed round"
[ "$(proc_status_field "$pid" TracerPid)" = 0 ] || fail "the target $pid is still traced"
"$FERRY" show --json "$T/r1" >"$T/r1.json" 2>"$T/show.err" ||
	fail "ferry show r1 fails after the failed round: $(cat "$T/show.err")"
[ "$("$PY" "$CHECK" field "$T/r1.json" complete)" = True ] || fail "r1 is not complete any more"
(cd "$T/r1" && md5sum -c --quiet "$T/r1.md5" >"$T/md5.err" 2>&1) ||
	fail "r1 changed during the failed round: $(head -n 3 "$T/md5.err")"
for k in $keepers; do
	"$WL/pidwait" "$k" 10 >/dev/null 2>&1 ||
		fail "ferry-keeper $k of $pid still runs 10 s after the failed round"
done
left=$("$PY" "$CHECK" keepers "$pid")
[ -z "$left" ] || fail "ferry-keeper $left of $pid runs on after the failed round"

step 3
wl_expect_pass "$pid" "$WL_OUT"
