#!/bin/bash
# Ten pre-copy rounds in a row, with writes, mmap, munmap, mremap, read() and
# MADV_DONTNEED between them, then the final dump: every round links to the
# one before (given with --prev-images-dir, or left to the default: the round
# that left tracking armed), saves holes for what did not change, and restore
# through the chain of eleven directories is byte-exact.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

# linked DIR PARENT_DIR: DIR names PARENT_DIR's snapshot as its parent, and has holes.
linked()
{
	local want got holes
	want=$(round_field "$2" snapshot_id)
	got=$(round_field "$1" parent_snapshot_id)
	[ -n "$want" ] && [ "$got" = "$want" ] ||
		fail "${1#"$T"/} names parent snapshot '$got', ${2#"$T"/} is '$want'"
	holes=$(round_stat "$1" pages_in_parent)
	[ "$holes" -gt 0 ] 2>/dev/null || fail "${1#"$T"/}: pages_in_parent is '$holes', expected > 0"
}

dirty_start

pre_dump_show "$T/r1"
round_check "$T/r1" 0 none
k=0
for r in 2 3 4 5 6 7 8 9 10; do
	step $((k + 1))
	step $((k + 2))
	if [ $((r % 2)) = 0 ]; then
		pre_dump_show "$T/r$r" --prev-images-dir "../r$((r - 1))"
	else
		pre_dump_show "$T/r$r"
	fi
	linked "$T/r$r" "$T/r$((r - 1))"
	round_check "$T/r$r" $((k + 2)) $k
	k=$((k + 2))
done
say "ten rounds after $k steps; holes in the last: $(round_stat "$T/r10" pages_in_parent)"

step $((k + 1))
ferry_dump "$pid" "$T/final" --prev-images-dir ../r10 --track-mem
show_json "$T/final"
linked "$T/final" "$T/r10"
round_check "$T/final" $((k + 1)) $k

restored_as_dumped "$T/final"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
