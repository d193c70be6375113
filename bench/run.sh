#!/bin/bash
# bench/run.sh BUILD: ferry's benchmarks; one JSON object per figure on stdout.
#
# What it measures (bench/README.md has the details and the meaning of each
# field):
#   limit     this machine's first-touch write speed into a fresh tmpfs file
#             and into fresh anonymous memory: the ceilings for dump and restore
#   dump      of memhog holding 256 MiB and 1 GiB of non-zero anonymous memory,
#             images on a tmpfs: wall time, time frozen, GB/s, peak RSS
#   restore   of the same images with -d: wall time to running, GB/s, peak RSS
#   python    dump and restore of python3 processes holding a small and a
#             large dict: ms to running
#
# Each figure is the median of RUNS runs (default 5), with every sample listed.
# A warm-up touches 4 GiB first; then the limits and the dump/restore runs are
# interleaved, round by round, so that a figure and the limit it is compared
# with see the same load on this shared machine.
# Progress and problems go to stderr. Exit status: 0 if every run worked,
# 1 if a run failed (its figures then count only the runs that worked), 2 if
# the benchmark could not start.
#
# Needs root (it mounts a tmpfs and ferry ptraces its targets), cc and
# /usr/bin/python3 or python3 on PATH (the python figures are left out without).
# It kills only processes it started (by pid, checked against their start
# time), and unmounts and removes its tmpfs and temporary directory on exit.

set -u

RUNS=${RUNS:-5}
SIZES_MIB="256 1024"
LIMIT_CHUNK_KIB=1024
# Memory touched once before anything is measured (see "Warm-up" in README.md):
# more than the benchmark ever holds at once (a 1 GiB workload, its 1 GiB
# image, a 1 GiB limit file).
WARMUP_MIB=4096
# python3 processes holding a dict of this many entries: a small one (the
# interpreter's own cost) and the one of the python end-to-end test
PY_DICT_SIZES="10000 300000"
# seconds allowed for a workload to get ready and for one ferry command
READY_TIMEOUT=60
CMD_TIMEOUT=120

# the targets of issue 2, for 1 GiB and for python3
TARGET_DUMP_RATIO=0.8
TARGET_RESTORE_RATIO=0.8
TARGET_DUMP_RSS_MIB=64
TARGET_PY_RESTORE_MS=20

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Progress goes to fd 3, a copy of stderr: the cycles below run with stderr
# muted, or the shell would report each dumped workload as "Killed".
log_to_fd3

bench_init run.sh "$@"
positive RUNS
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)
# the warm-up (4 GiB); later at most memhog 1 GiB + its images 1 GiB, or the
# images + the restored copy, plus margin
need_memory $((5 << 10))

BIN=$BUILD/bench
compile "$BIN" memhog firsttouch timeit
TIMEIT=$BIN/timeit
bench_workdir ferry-bench

# A field of the inventory's dump statistics, from `ferry show --json`.
inventory_stat()
{
	json_number "$("$FERRY" show --json "$1/inventory.img" 2>/dev/null)" "$2"
}

# figure_of KEY BENCH SIZE_MIB METRIC UNIT FORMAT WHAT [EXTRA]: the JSON
# object of one figure (lib.sh's figure), with bench and size_mib.
figure_of()
{
	local head="\"bench\":\"$2\""
	[ -n "$3" ] && head="$head,\"size_mib\":$3"
	figure "$1" "$head" "$2 $4${3:+ ($3 MiB)}" "$4" "$5" "$6" "$7" "${8:-}"
}

# ratio_fields KEY LIMIT_KEY LIMIT_NAME [TARGET]: the fields that compare KEY
# (NAME.gbps) with LIMIT_KEY. ratio_to_limit, which the target is checked
# against, is the median of the per-round ratios (NAME.ratio: each run divided
# by the limit measured right before it, on the same kind of memory);
# ratio_of_medians divides the two medians, for reference.
ratio_fields()
{
	local v l ratio out of_medians
	v=$(median "$1") || return 0
	l=$(median "$2") || return 0
	ratio=$(median "${1%.gbps}.ratio") || return 0
	ratio=$(fmt %.3f "$ratio")
	of_medians=$(awk -v v="$v" -v l="$l" 'BEGIN { printf "%.3f", v / l }')
	out="\"ratio_to_limit\":$ratio,\"ratio_of_medians\":$of_medians,\"limit\":\"$3\""
	out="$out,\"limit_value\":$(fmt %.3f "$l")"
	if [ -n "${4:-}" ]; then
		out="$out,\"target\":\">= $4 x $3\",\"target_met\":$(awk -v r="$ratio" -v t="$4" \
			'BEGIN { print (r >= t) ? "true" : "false" }')"
	fi
	printf '%s' "$out"
}

# ---------------------------------------------------------------- runs

# measure_limit anon|tmpfs MIB: this machine's limit for a MIB MiB figure,
# taken right before that figure. It runs twice back to back and the faster
# run counts: this VM hands freed memory back to its host (free page
# reporting), and the first touch of such memory costs 3-8x, at random. The
# better of two runs is the machine's limit on memory the host backs; the
# figure is not given that benefit, so the ratio errs against ferry.
# Sets LIMIT (GB/s; empty on failure).
LIMIT=""
measure_limit()
{
	local kind=$1 mib=$2 out bytes ns i
	local cmd=("$BIN/firsttouch" anon "$mib")
	[ "$kind" = tmpfs ] && cmd=("$BIN/firsttouch" file "$MNT/firsttouch" "$mib" "$LIMIT_CHUNK_KIB")
	local best=0 v
	LIMIT=""
	for i in 1 2; do
		if ! out=$("${cmd[@]}"); then
			FAILED=$((FAILED + 1))
			log "FAILED: ${cmd[*]}"
			rm -f "$MNT/firsttouch"
			return 1
		fi
		rm -f "$MNT/firsttouch"
		read -r bytes ns <<<"$out"
		v=$(awk -v b="$bytes" -v n="$ns" 'BEGIN { print b / n }')
		best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
	done
	LIMIT=$best
	add "limit.$kind.$mib" "$LIMIT"
}

dump_workload()
{
	local key=$1 pid=$2 img=$3 limit=${4:-} name rc frozen gbps
	name=dump.$key.$SEQ
	ferry_timed "$name" dump -t "$pid" -D "$img"
	rc=$?
	# ferry kills the target after a dump; reap it so that its pid is free
	wait "$pid" 2>/dev/null
	if [ "$rc" != 0 ]; then
		kill_pid "$pid"
		return 1
	fi
	if pid_alive "$pid"; then
		log "FAILED: pid $pid still runs after ferry dump"
		FAILED=$((FAILED + 1))
		kill_pid "$pid"
		return 1
	fi
	DUMP_BYTES=$(inventory_stat "$img" bytes_written)
	frozen=$(inventory_stat "$img" frozen_ns)
	if [ -z "$DUMP_BYTES" ] || [ -z "$frozen" ]; then
		log "FAILED: ferry show --json $img/inventory.img has no bytes_written or frozen_ns"
		FAILED=$((FAILED + 1))
		return 1
	fi
	add "$key.dump.bytes" "$DUMP_BYTES"
	add "$key.dump.wall" "$(awk -v n="$T_WALL_NS" 'BEGIN { print n / 1e6 }')"
	add "$key.dump.frozen" "$(awk -v n="$frozen" 'BEGIN { print n / 1e6 }')"
	gbps=$(awk -v b="$DUMP_BYTES" -v n="$T_WALL_NS" 'BEGIN { print b / n }')
	add "$key.dump.gbps" "$gbps"
	[ -n "$limit" ] && add "$key.dump.ratio" "$(awk -v v="$gbps" -v l="$limit" 'BEGIN { print v / l }')"
	add "$key.dump.rss" "$(awk -v k="$T_RSS_KIB" 'BEGIN { print k / 1024 }')"
	return 0
}

# restore_workload KEY PID IMG BYTES [MIN_RSS_MIB LIMIT]: restore IMG with -d
# under timeit; check that PID runs again (holding at least MIN_RSS_MIB of
# anonymous memory); record wall time, ferry's own time, throughput (and its
# ratio to LIMIT, this round's limit in GB/s) and peak RSS under KEY; kill the
# restored process.
restore_workload()
{
	local key=$1 pid=$2 img=$3 bytes=$4 min_rss=${5:-0} limit=${6:-}
	local name rc logged gbps
	name=restore.$key.$SEQ
	ferry_timed "$name" restore -D "$img" -d --pidfile "$WORK/$name.pid"
	rc=$?
	read_pidfile "$WORK/$name.pid"
	if [ "$rc" != 0 ]; then
		[ -n "$NEW" ] && kill_pid "$NEW"
		return 1
	fi
	check_restored "$img" "$pid" "$min_rss" || return 1
	kill_pid "$NEW"
	logged=$(restored_in "$WORK/$name.log")
	add "$key.restore.wall" "$(awk -v n="$T_WALL_NS" 'BEGIN { print n / 1e6 }')"
	add "$key.restore.rss" "$(awk -v k="$T_RSS_KIB" 'BEGIN { print k / 1024 }')"
	if [ -n "$bytes" ]; then
		gbps=$(awk -v b="$bytes" -v n="$T_WALL_NS" 'BEGIN { print b / n }')
		add "$key.restore.gbps" "$gbps"
		[ -n "$limit" ] &&
			add "$key.restore.ratio" "$(awk -v v="$gbps" -v l="$limit" 'BEGIN { print v / l }')"
	fi
	[ -n "$logged" ] && add "$key.restore.logged" "$logged"
	return 0
}

# One dump and restore of memhog holding MIB MiB.
memhog_cycle()
{
	local mib=$1 img
	start_workload "memhog$mib" "$BIN/memhog" "$mib" || return 1
	img=$MNT/img.$mib.$SEQ
	measure_limit tmpfs "$mib"
	if dump_workload "mem$mib" "$WL_PID" "$img" "$LIMIT"; then
		measure_limit anon "$mib"
		restore_workload "mem$mib" "$WL_PID" "$img" "$DUMP_BYTES" "$mib" "$LIMIT"
	fi
	rm -rf "$img"
}

python_script()
{
	cat <<PYEOF
import time
d = {'key%d' % i: i * 7919 % 1000003 for i in range($1)}
print('ready', flush=True)
while True:
    time.sleep(3600)
PYEOF
}

# One dump and restore of a python3 process holding a dict of ENTRIES entries.
python_cycle()
{
	local entries=$1 img
	start_workload python "$PY" -c "$(python_script "$entries")" || return 1
	img=$MNT/img.python.$SEQ
	if dump_workload "py$entries" "$WL_PID" "$img"; then
		restore_workload "py$entries" "$WL_PID" "$img" "$DUMP_BYTES"
	fi
	rm -rf "$img"
}

# ---------------------------------------------------------------- main

# the limit file (1 GiB) and the largest images (1 GiB) never coexist
mount_tmpfs 2g ferry-bench

log "ferry $FERRY, $RUNS rounds; kernel $(uname -r), $(nproc) CPUs, THP $(sed 's/.*\[\(.*\)\].*/\1/' \
	/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
START_S=$SECONDS
# nothing here controls which pages a workload or a tmpfs gets: touch enough
# memory once (see warm_up in lib.sh)
warm_up "$BIN/firsttouch" "$WARMUP_MIB"
for ((round = 1; round <= RUNS; round++)); do
	log "round $round/$RUNS: memhog $SIZES_MIB MiB with their limits"
	for mib in $SIZES_MIB; do
		memhog_cycle "$mib" 2>/dev/null
	done
done
if [ -n "$PY" ]; then
	log "python3 ($PY), dicts of $PY_DICT_SIZES entries: $RUNS dump/restore cycles each"
	for ((round = 1; round <= RUNS; round++)); do
		for entries in $PY_DICT_SIZES; do
			python_cycle "$entries" 2>/dev/null
		done
	done
else
	log "no python3: the python figures are left out"
fi
log "done in $((SECONDS - START_S)) s"

# ---------------------------------------------------------------- figures

for mib in $SIZES_MIB; do
	figure_of "limit.tmpfs.$mib" limit "$mib" tmpfs_write GB/s %.3f \
		"machine limit: first-touch write of $mib MiB into a new file on the tmpfs, with $LIMIT_CHUNK_KIB KiB write() calls from one pre-touched buffer (open to close), the second of two back-to-back runs, right before each dump of that size; GB = 1e9 bytes" \
		'"name":"tmpfs_write"'
	figure_of "limit.anon.$mib" limit "$mib" anon_first_touch GB/s %.3f \
		"machine limit: mmap of $mib MiB of private anonymous memory and memset of every byte (page faults, kernel zeroing, then the write), the second of two back-to-back runs, right before each restore of that size; GB = 1e9 bytes" \
		'"name":"anon_first_touch"'
done

for mib in $SIZES_MIB; do
	k=mem$mib
	is_target=0
	[ "$mib" = 1024 ] && is_target=1
	figure_of "$k.dump.wall" dump "$mib" wall_time ms %.1f \
		"wall time of 'ferry dump -t PID -D DIR' (fork+exec to exit) of memhog holding $mib MiB of non-zero private anonymous memory, images on tmpfs"
	figure_of "$k.dump.frozen" dump "$mib" frozen_time ms %.1f \
		"time the target was frozen during that dump (frozen_ns of the inventory's stats)"
	figure_of "$k.dump.gbps" dump "$mib" throughput GB/s %.3f \
		"bytes_written (inventory stats: page data written) divided by the dump's wall time; GB = 1e9 bytes" \
		"$(ratio_fields "$k.dump.gbps" "limit.tmpfs.$mib" tmpfs_write \
			"$([ $is_target = 1 ] && echo $TARGET_DUMP_RATIO)")"
	figure_of "$k.dump.rss" dump "$mib" peak_rss MiB %.1f \
		"peak resident set of the ferry dump process (ru_maxrss from wait4)" \
		"$([ $is_target = 1 ] && below_target "$k.dump.rss" $TARGET_DUMP_RSS_MIB MiB)"
	figure_of "$k.restore.wall" restore "$mib" wall_time ms %.1f \
		"wall time of 'ferry restore -D DIR -d --pidfile F' of that image (fork+exec to exit; it exits once the process runs)"
	figure_of "$k.restore.logged" restore "$mib" ferry_time ms %.1f \
		"ferry's own 'pid N restored in X ms' (from its start of the restore to the process running; excludes exec and exit)"
	figure_of "$k.restore.gbps" restore "$mib" throughput GB/s %.3f \
		"bytes of page data in the image (the dump's bytes_written) divided by the restore's wall time; GB = 1e9 bytes" \
		"$(ratio_fields "$k.restore.gbps" "limit.anon.$mib" anon_first_touch \
			"$([ $is_target = 1 ] && echo $TARGET_RESTORE_RATIO)")"
	figure_of "$k.restore.rss" restore "$mib" peak_rss MiB %.1f \
		"peak resident set of the ferry restore process (ru_maxrss from wait4; includes page-cache pages of the image it maps, e.g. to verify checksums)"
done

if [ -n "$PY" ]; then
	for entries in $PY_DICT_SIZES; do
		k=py$entries
		image_mib=$(median "$k.dump.bytes") &&
			image_mib=$(awk -v b="$image_mib" 'BEGIN { printf "%.1f", b / 1048576 }')
		py_fields="\"dict_entries\":$entries,\"image_mib\":${image_mib:-null}"
		py_what="python3 -c script that built a dict of $entries entries and sleeps in time.sleep (image_mib: MiB of page data in its image); images on tmpfs"
		figure_of "$k.restore.wall" python "" restore_wall_time ms %.2f \
			"wall time of 'ferry restore -D DIR -d --pidfile F' (fork+exec to exit: from start to running) of a $py_what" \
			"$py_fields,$(below_target "$k.restore.wall" $TARGET_PY_RESTORE_MS ms)"
		figure_of "$k.restore.logged" python "" restore_time ms %.2f \
			"ferry's own 'pid N restored in X ms' (excludes exec and exit) for the restore of a $py_what" \
			"$py_fields,$(below_target "$k.restore.logged" $TARGET_PY_RESTORE_MS ms)"
		figure_of "$k.dump.wall" python "" dump_wall_time ms %.1f \
			"wall time of 'ferry dump -t PID -D DIR' of a $py_what" "$py_fields"
		figure_of "$k.dump.frozen" python "" dump_frozen_time ms %.1f \
			"time that python3 process was frozen during the dump (frozen_ns of the inventory's stats)" \
			"$py_fields"
	done
fi

if [ "$FAILED" != 0 ]; then
	log "$FAILED run(s) failed; their figures count only the runs that worked"
	exit 1
fi
exit 0
