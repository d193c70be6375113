#!/bin/bash
# Post-copy with one command on the destination: `ferry restore --lazy-pages
# --page-server --address --port` starts the lazy-pages daemon itself (no
# `ferry lazy-pages` first). The restored process runs at once, its pages
# still on the source; its steps (writes before arrival, fork, mremap, munmap,
# madvise) and the final check of every page are exact; the daemon, whose log
# joins the restore's, exits once every page arrived, and the dump exits 0.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_help_check
"$FERRY" restore --help | grep -q -- --page-server || skip "ferry restore has no --page-server"
lazy_run 64 all
lazy_dump_start
{ timeout --foreground -k 5 "$FERRY_TIMEOUT" "$FERRY" restore -D "$IMG" --lazy-pages \
	--page-server --address "$LAZY_ADDR" --port "$PORT" --prefetch-after 1000 -d \
	--pidfile "$T/restore.pid" -v4 -o "$T/restore.log" </dev/null >/dev/null 2>"$T/restore.err"; } \
	2>/dev/null || fail "ferry restore --lazy-pages --page-server failed: $(tail -n 3 "$T/restore.err")"
lazy_one_command_check
