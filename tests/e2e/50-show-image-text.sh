#!/bin/bash
# ferry show decodes an image directory and each image file in it for humans.
. "$(dirname "$0")/../lib.sh"

wl_start counter
wl_wait_ready
pid=$WL_PID
ferry_dump "$pid" "$T/img"

"$FERRY" show "$T/img" >"$T/show.log" 2>"$T/show.err.log" || fail "ferry show DIR failed: $(cat "$T/show.err.log")"
[ -s "$T/show.log" ] || fail "ferry show DIR printed nothing"
grep -qw "$pid" "$T/show.log" || fail "ferry show DIR does not mention pid $pid"
say "ferry show DIR: $(wc -l <"$T/show.log") lines"
for f in "$T"/img/*; do
	"$FERRY" show "$f" >"$T/show-file.log" 2>"$T/show.err.log" ||
		fail "ferry show ${f##*/} failed: $(cat "$T/show.err.log")"
	[ -s "$T/show-file.log" ] || fail "ferry show ${f##*/} printed nothing"
done
