#!/bin/bash
# `ferry restore --wait-images SECS` started before the dump: it waits (no
# image directory yet), restores the moment the dump has published a complete
# image, and the post-copy then runs as with a restore started afterwards:
# every page exact, the daemon and the dump exit once all pages arrived. A
# wait that sees no image in time fails with a clear error naming DIR.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
"$FERRY" restore --help | grep -q -- --wait-images || skip "ferry restore has no --wait-images"

# nothing comes: a bounded wait, one clear line, non-zero, nothing left
rc=0
"$FERRY" restore -D "$T/never" --wait-images 1 -d 2>"$T/never.err" || rc=$?
[ "$rc" != 0 ] || fail "ferry restore --wait-images 1 on an empty directory succeeded"
grep -q "no complete image in $T/never after 1 s" "$T/never.err" ||
	fail "unclear error for a wait that timed out: $(cat "$T/never.err")"

lazy_run 64 all
PORT=$(free_port)
(close_extra_fds && cd "$T" && exec timeout --foreground -k 5 "$FERRY_TIMEOUT" "$FERRY" restore \
	-D "$IMG" --lazy-pages --page-server --address "$LAZY_ADDR" --port "$PORT" \
	--prefetch-after 1000 --wait-images "$FERRY_TIMEOUT" -d --pidfile "$T/restore.pid" -v4 \
	-o "$T/restore.log") </dev/null >/dev/null 2>"$T/restore.err" &
REST=$!
track_pid "$REST"
# it waits: no process is restored while there is no image
wait_line "$T/restore.log" 'images checked|error: ' 1 &&
	fail "ferry restore --wait-images went on without an image: $(tail -n 2 "$T/restore.log")"
pid_alive "$REST" || fail "ferry restore --wait-images did not wait: $(tail -n 3 "$T/restore.err")"
lazy_dump_start
wait "$REST" || fail "ferry restore --wait-images failed: $(tail -n 3 "$T/restore.err")"
lazy_one_command_check
