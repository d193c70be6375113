#!/bin/bash
# A target running as an unprivileged user (nobody; vm.unprivileged_userfaultfd
# does not let it make a userfaultfd itself) is pre-copied with dirty tracking:
# the second round has holes and exactly the written pages, and restore through
# the chain gives back the same process, still as nobody, byte-exact.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
NOBODY=$(id -u nobody 2>/dev/null) || skip "there is no user nobody"
NOGROUP=$(id -g nobody)

# The workload's own directory (its OUTFILE and temp files) is nobody's; T
# must be passable for it. The images stay in T, root's only.
chmod 0711 "$T" || fail "cannot chmod $T"
U=$T/nobody
mkdir "$U" && chown "$NOBODY:$NOGROUP" "$U" || fail "cannot make $U for nobody"
WL_OUT=$U/dirty.out
(close_extra_fds && cd "$U" && TMPDIR=$U exec setpriv --reuid="$NOBODY" --regid="$NOGROUP" \
	--clear-groups "$WL/dirty" "$WL_OUT") </dev/null >"$T/dirty.log" 2>&1 &
pid=$!
track_pid "$pid"
wl_wait_ready "$pid" "$WL_OUT"
uid=$(proc_status_field "$pid" Uid)
[ "$(echo $uid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "the target runs with Uid '$uid', not as nobody"

pre_dump_show "$T/r1"
step 1
step 2
pre_dump_show "$T/r2" --prev-images-dir ../r1
holes=$("$PY" "$CHECK" stat "$T/r2.json" pages_in_parent) || fail "$holes"
[ "$holes" -gt 0 ] || fail "the second round of a non-root target has no holes (pages_in_parent $holes)"
round_check "$T/r2" 2 0
[ "$(stat -c %u "$T/r2/inventory.img")" = 0 ] || fail "the images are not root's"

step 3
ferry_dump "$pid" "$T/final" --prev-images-dir ../r2 --track-mem
restored_as_dumped "$T/final"
uid=$(proc_status_field "$RESTORED_PID" Uid)
[ "$(echo $uid)" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "restored with Uid '$uid', not as nobody"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
