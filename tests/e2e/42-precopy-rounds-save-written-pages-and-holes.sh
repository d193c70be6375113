#!/bin/bash
# Each pre-copy round saves exactly the pages written since its parent round
# (and new mappings whole), records the other present pages as holes, and
# leaves unmapped and MADV_DONTNEED'd pages out; restore through the chain is
# byte-exact. Between rounds the workload writes pages by the CPU and by read(),
# maps, unmaps, moves (mremap) and zeroes (MADV_DONTNEED) memory.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

dirty_start

pre_dump_show "$T/r0"
round_check "$T/r0" 0 none
for k in 1 2 3 4 5 6 7 8; do
	step $k
	pre_dump_show "$T/r$k" --prev-images-dir "../r$((k - 1))"
	round_check "$T/r$k" $k $((k - 1))
done
step 9
ferry_dump "$pid" "$T/final" --prev-images-dir ../r8 --track-mem
show_json "$T/final"
round_check "$T/final" 9 8

restored_as_dumped "$T/final"
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
