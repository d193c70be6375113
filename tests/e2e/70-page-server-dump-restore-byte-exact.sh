#!/bin/bash
# A dump sent through `ferry page-server` on loopback: the memory lands only
# on the server (DIR/<name>/pagemap-PID.img + pages-PID.img, nothing hidden
# left over), the source directory holds the rest, and the two together
# restore a process whose every mapping is exact (the mem workload checks
# every byte it wrote).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

ps_dump_server
wl_ready mem
pid=$WL_PID
ferry_dump "$pid" "$T/src/d1" "${PS_OPTS[@]}"

ls "$T"/src/d1/pages-*.img >/dev/null 2>&1 && fail "the page data was written locally too"
ls "$T"/dst/d1/pagemap-*.img >/dev/null 2>&1 || fail "the server holds no pagemap: $(ls -A "$T/dst" "$T/dst/d1" 2>&1 | tr '\n' ' ')"
ls "$T"/dst/d1/pages-*.img >/dev/null 2>&1 || fail "the server holds no pages file"
leftover=$(ls -A "$T/dst" | grep -v '^d1$')
[ -z "$leftover" ] || fail "the server left $leftover in its directory"
grep -q "committed d1/pid" "$T/ps.log" || fail "the server logged no commit"

ps_copy_images d1
"$FERRY" show "$T/dst/d1" >"$T/show.out" 2>&1 || fail "ferry show of the server's directory failed: $(tail -n 2 "$T/show.out")"
ferry_restore "$T/dst/d1"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
pid_alive "$PS_PID" || fail "the page server died"
exit 0
