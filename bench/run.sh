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
LIMIT_MIB=1024
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

# Progress goes to fd 3, a copy of stderr: the cycles below run with stderr
# muted, or the shell would report each dumped workload as "Killed".
exec 3>&2

log()
{
	echo "bench: $*" >&3
}

die()
{
	log "$*"
	exit 2
}

if [ $# != 1 ]; then
	echo "usage: bench/run.sh BUILD" >&2
	exit 2
fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"
BUILD=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
SRC=$(cd "$(dirname "$0")" && pwd)
FERRY=$BUILD/ferry
[ -x "$FERRY" ] || die "$FERRY is not built (run make first)"
[ "$(id -u)" = 0 ] || die "needs root: it mounts a tmpfs and ferry ptraces its targets"
CC=${CC:-cc}
command -v "$CC" >/dev/null || die "no C compiler ($CC)"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)

# the warm-up (4 GiB); later at most memhog 1 GiB + its images 1 GiB, or the
# images + the restored copy, plus margin
avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
[ "${avail_kib:-0}" -ge $((5 << 20)) ] ||
	die "needs 5 GiB of available memory, $((${avail_kib:-0} >> 10)) MiB are"

# ---------------------------------------------------------------- helpers

BIN=$BUILD/bench
mkdir -p "$BIN" || die "cannot create $BIN"
for prog in memhog firsttouch timeit; do
	"$CC" -O2 -Wall -Wextra -Werror -o "$BIN/$prog" "$SRC/$prog.c" ||
		die "cannot compile $SRC/$prog.c"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX") || die "mktemp failed"
MNT=$WORK/tmpfs
MOUNTED=0
# processes this script started or restored, as "pid:starttime"
TRACKED=()
SEQ=0
FAILED=0

# The start time (clock ticks since boot) of PID, or nothing if it is gone.
starttime()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

# True while PID exists and is not a zombie.
alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != [ZX] ]]
}

track()
{
	local start
	start=$(starttime "$1") || return 0
	TRACKED+=("$1:$start")
}

# kill_pid PID: SIGKILL PID if it is still the process we started, and
# wait until it is no longer running (reaped if it is our child).
kill_pid()
{
	local pid=$1 entry i
	for entry in "${TRACKED[@]}"; do
		[ "${entry%%:*}" = "$pid" ] || continue
		[ "$(starttime "$pid")" = "${entry#*:}" ] && kill -KILL "$pid" 2>/dev/null
	done
	wait "$pid" 2>/dev/null
	for ((i = 0; i < 1000; i++)); do
		alive "$pid" || return 0
		sleep 0.01
	done
	log "process $pid still runs 10 s after SIGKILL"
	return 1
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup()
{
	local entry pid
	trap - EXIT INT TERM HUP
	for entry in "${TRACKED[@]}"; do
		pid=${entry%%:*}
		[ "$(starttime "$pid")" = "${entry#*:}" ] && kill -KILL "$pid" 2>/dev/null
	done
	for entry in "${TRACKED[@]}"; do
		wait "${entry%%:*}" 2>/dev/null
	done
	if [ "$MOUNTED" = 1 ]; then
		# a process killed above may take a moment to release its files
		local i
		for ((i = 0; i < 50; i++)); do
			umount "$MNT" 2>/dev/null && break
			sleep 0.1
		done
		if mountpoint -q "$MNT"; then
			log "cannot unmount $MNT: $(umount "$MNT" 2>&1); detaching it lazily"
			umount -l "$MNT"
		fi
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Close every fd above 2 in this (sub)shell: a pipe inherited from whoever
# runs the benchmark would become part of the workload's state, which ferry
# refuses to dump.
close_extra_fds()
{
	local fd
	for fd in "/proc/$BASHPID/fd/"*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
	done
	return 0
}

# start_workload NAME CMD ARGS...: start CMD with cwd WORK, stdin /dev/null,
# output to $WORK/NAME.N.out; wait until it prints "ready". Sets WL_PID.
start_workload()
{
	local name=$1 out i
	shift
	SEQ=$((SEQ + 1))
	out=$WORK/$name.$SEQ.out
	(close_extra_fds && cd "$WORK" && exec "$@") </dev/null >"$out" 2>&1 &
	WL_PID=$!
	track "$WL_PID"
	for ((i = 0; i < READY_TIMEOUT * 20; i++)); do
		grep -q '^ready$' "$out" 2>/dev/null && return 0
		alive "$WL_PID" || break
		sleep 0.05
	done
	log "workload '$*' (pid $WL_PID) did not get ready: $(tail -n 3 "$out")"
	kill_pid "$WL_PID"
	return 1
}

# run_timed NAME CMD ARGS...: run CMD under timeit with a time limit; its
# stdout and stderr go to $WORK/NAME.err. Sets T_WALL_NS, T_RSS_KIB. Returns
# the command's exit status.
run_timed()
{
	local name=$1 rc
	shift
	rm -f "$WORK/$name.time"
	timeout -k 5 "$CMD_TIMEOUT" "$BIN/timeit" "$WORK/$name.time" "$@" \
		>"$WORK/$name.err" 2>&1 3>&-
	rc=$?
	T_WALL_NS=""
	T_RSS_KIB=""
	[ -s "$WORK/$name.time" ] && read -r T_WALL_NS T_RSS_KIB _ <"$WORK/$name.time"
	[ "$rc" = 124 ] && echo "timed out after $CMD_TIMEOUT s" >>"$WORK/$name.err"
	# a command that "worked" without a timing did not work
	[ -z "$T_WALL_NS" ] && [ "$rc" = 0 ] && rc=1
	return "$rc"
}

# run_failed WHAT RC ERRFILE [LOG]: report a failed run on stderr.
run_failed()
{
	FAILED=$((FAILED + 1))
	log "FAILED (exit $2): $1"
	sed 's/^/bench:   | /' "$3" >&3
	[ -n "${4:-}" ] && [ -s "$4" ] && grep -E 'error|warn' "$4" | tail -n 3 | sed 's/^/bench:   log| /' >&3
	return 0
}

# A field of the inventory's dump statistics, from `ferry show --json`.
inventory_stat()
{
	"$FERRY" show --json "$1/inventory.img" 2>/dev/null |
		sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([0-9][0-9]*\).*/\1/p" | head -n 1
}

# Samples of each figure, by key: space-separated numbers.
declare -A SAMPLES

add()
{
	SAMPLES[$1]="${SAMPLES[$1]:-} $2"
}

# median KEY: the median of the samples of KEY (nothing if it has none).
median()
{
	# shellcheck disable=SC2086
	printf '%s\n' ${SAMPLES[$1]:-} | sort -g | awk '
		NF { v[++n] = $1 }
		END {
			if (n == 0) exit 1
			if (n % 2) printf "%.6g\n", v[(n + 1) / 2]
			else printf "%.6g\n", (v[n / 2] + v[n / 2 + 1]) / 2
		}'
}

count()
{
	# shellcheck disable=SC2086
	set -- ${SAMPLES[$1]:-}
	echo $#
}

# fmt FORMAT NUMBER
fmt()
{
	awk -v f="$1" -v x="$2" 'BEGIN { printf f, x }'
}

json_str()
{
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

# figure KEY BENCH SIZE_MIB METRIC UNIT FORMAT WHAT [EXTRA]: print the JSON
# object of one figure: the median of KEY's samples, formatted with FORMAT.
# EXTRA is a ready JSON fragment of further fields (without a leading comma).
# Prints nothing (and says so on stderr) if KEY has no samples.
figure()
{
	local key=$1 bench=$2 size=$3 metric=$4 unit=$5 format=$6 what=$7 extra=${8:-}
	local med samples="" s n
	med=$(median "$key") || {
		log "no successful run for $bench $metric${size:+ ($size MiB)}: figure left out"
		return 0
	}
	for s in ${SAMPLES[$key]}; do
		samples="$samples${samples:+,}$(fmt "$format" "$s")"
	done
	n=$(count "$key")
	printf '{"bench":"%s",' "$bench"
	[ -n "$size" ] && printf '"size_mib":%s,' "$size"
	printf '"metric":"%s","value":%s,"unit":"%s"' "$metric" "$(fmt "$format" "$med")" "$unit"
	[ -n "$extra" ] && printf ',%s' "$extra"
	printf ',"runs":%s,"samples":[%s],"what":%s}\n' "$n" "$samples" "$(json_str "$what")"
}

# ratio_fields KEY LIMIT_KEY LIMIT_NAME [TARGET]: the fields that compare the
# median of KEY (NAME.gbps) with the median of LIMIT_KEY, and with a target
# ratio; also the median of the per-round ratios (NAME.ratio), where each run
# is compared with the limit measured in its own round.
ratio_fields()
{
	local v l ratio out per_round
	v=$(median "$1") || return 0
	l=$(median "$2") || return 0
	ratio=$(awk -v v="$v" -v l="$l" 'BEGIN { printf "%.3f", v / l }')
	out="\"ratio_to_limit\":$ratio,\"limit\":\"$3\",\"limit_value\":$(fmt %.3f "$l")"
	per_round=$(median "${1%.gbps}.ratio") &&
		out="$out,\"ratio_per_round_median\":$(fmt %.3f "$per_round")"
	if [ -n "${4:-}" ]; then
		out="$out,\"target\":\">= $4 x $3\",\"target_met\":$(awk -v r="$ratio" -v t="$4" \
			'BEGIN { print (r >= t) ? "true" : "false" }')"
	fi
	printf '%s' "$out"
}

# below_target KEY TARGET UNIT: target fields for "median of KEY < TARGET".
below_target()
{
	local v
	v=$(median "$1") || return 0
	printf '"target":"< %s %s","target_met":%s' "$2" "$3" \
		"$(awk -v v="$v" -v t="$2" 'BEGIN { print (v < t) ? "true" : "false" }')"
}

# ---------------------------------------------------------------- runs

# The limits of this round, for the per-round ratios (empty if not measured).
ROUND_ANON=""
ROUND_TMPFS=""

measure_limits()
{
	local out bytes ns
	ROUND_ANON=""
	ROUND_TMPFS=""
	if out=$("$BIN/firsttouch" anon "$LIMIT_MIB"); then
		read -r bytes ns <<<"$out"
		ROUND_ANON=$(awk -v b="$bytes" -v n="$ns" 'BEGIN { print b / n }')
		add limit.anon "$ROUND_ANON"
	else
		FAILED=$((FAILED + 1))
		log "FAILED: $BIN/firsttouch anon $LIMIT_MIB"
	fi
	if out=$("$BIN/firsttouch" file "$MNT/firsttouch" "$LIMIT_MIB" "$LIMIT_CHUNK_KIB"); then
		read -r bytes ns <<<"$out"
		ROUND_TMPFS=$(awk -v b="$bytes" -v n="$ns" 'BEGIN { print b / n }')
		add limit.tmpfs "$ROUND_TMPFS"
	else
		FAILED=$((FAILED + 1))
		log "FAILED: $BIN/firsttouch file $MNT/firsttouch $LIMIT_MIB $LIMIT_CHUNK_KIB"
	fi
	rm -f "$MNT/firsttouch"
}

# dump_workload KEY PID IMG [LIMIT]: dump PID into IMG under timeit; record
# wall time, frozen time, throughput (and its ratio to LIMIT, this round's
# limit in GB/s) and peak RSS under KEY. Sets DUMP_BYTES.
dump_workload()
{
	local key=$1 pid=$2 img=$3 limit=${4:-} name rc frozen gbps
	name=dump.$key.$SEQ
	run_timed "$name" "$FERRY" dump -t "$pid" -D "$img" -v 2 -o "$WORK/$name.log"
	rc=$?
	# ferry kills the target after a dump; reap it so that its pid is free
	wait "$pid" 2>/dev/null
	if [ "$rc" != 0 ]; then
		run_failed "ferry dump -t $pid -D $img -v 2 -o $WORK/$name.log" "$rc" \
			"$WORK/$name.err" "$WORK/$name.log"
		kill_pid "$pid"
		return 1
	fi
	if alive "$pid"; then
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
	local name rc new logged rss_kib gbps
	name=restore.$key.$SEQ
	run_timed "$name" "$FERRY" restore -D "$img" -d --pidfile "$WORK/$name.pid" \
		-v 2 -o "$WORK/$name.log"
	rc=$?
	new=$(tr -d '[:space:]' <"$WORK/$name.pid" 2>/dev/null)
	[[ $new =~ ^[0-9]+$ ]] && track "$new"
	if [ "$rc" != 0 ]; then
		run_failed "ferry restore -D $img -d --pidfile $WORK/$name.pid -v 2 -o $WORK/$name.log" \
			"$rc" "$WORK/$name.err" "$WORK/$name.log"
		[[ $new =~ ^[0-9]+$ ]] && kill_pid "$new"
		return 1
	fi
	if [ "$new" != "$pid" ] || ! alive "$new"; then
		log "FAILED: restore of pid $pid: the pid file says '$new', running: $(alive "$new" && echo yes || echo no)"
		FAILED=$((FAILED + 1))
		[[ $new =~ ^[0-9]+$ ]] && kill_pid "$new"
		return 1
	fi
	rss_kib=$(awk '/^RssAnon:/ { print $2 }' "/proc/$new/status" 2>/dev/null)
	if [ "${rss_kib:-0}" -lt $((min_rss * 1024)) ]; then
		log "WARNING: restored pid $new holds only ${rss_kib:-?} KiB of anonymous memory, expected >= $min_rss MiB"
	fi
	kill_pid "$new"
	logged=$(sed -n 's/.*restored in \([0-9.][0-9.]*\) ms.*/\1/p' "$WORK/$name.log" | tail -n 1)
	add "$key.restore.wall" "$(awk -v n="$T_WALL_NS" 'BEGIN { print n / 1e6 }')"
	add "$key.restore.rss" "$(awk -v k="$T_RSS_KIB" 'BEGIN { print k / 1024 }')"
	if [ -n "$bytes" ]; then
		gbps=$(awk -v b="$bytes" -v n="$T_WALL_NS" 'BEGIN { print b / n }')
		add "$key.restore.gbps" "$gbps"
		[ -n "$limit" ] &&
			add "$key.restore.ratio" "$(awk -v v="$gbps" -v l="$limit" 'BEGIN { print v / l }')"
	fi
	if [ -n "$logged" ]; then
		add "$key.restore.logged" "$logged"
	else
		log "WARNING: no 'restored in X ms' line in $WORK/$name.log"
	fi
	return 0
}

# One dump and restore of memhog holding MIB MiB.
memhog_cycle()
{
	local mib=$1 img
	start_workload "memhog$mib" "$BIN/memhog" "$mib" || {
		FAILED=$((FAILED + 1))
		return 1
	}
	img=$MNT/img.$mib.$SEQ
	if dump_workload "mem$mib" "$WL_PID" "$img" "$ROUND_TMPFS"; then
		restore_workload "mem$mib" "$WL_PID" "$img" "$DUMP_BYTES" "$mib" "$ROUND_ANON"
	fi
	rm -rf "$img"
}

# python_script ENTRIES: a python3 program that builds a dict of ENTRIES
# entries, says ready and sleeps.
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
	start_workload python "$PY" -c "$(python_script "$entries")" || {
		FAILED=$((FAILED + 1))
		return 1
	}
	img=$MNT/img.python.$SEQ
	if dump_workload "py$entries" "$WL_PID" "$img"; then
		restore_workload "py$entries" "$WL_PID" "$img" "$DUMP_BYTES"
	fi
	rm -rf "$img"
}

# ---------------------------------------------------------------- main

mkdir "$MNT" || die "cannot create $MNT"
# the limit file (1 GiB) and the largest images (1 GiB) never coexist
mount -t tmpfs -o size=2g,mode=0700 ferry-bench "$MNT" || die "cannot mount a tmpfs on $MNT"
MOUNTED=1

log "ferry $FERRY, $RUNS rounds; kernel $(uname -r), $(nproc) CPUs, THP $(sed 's/.*\[\(.*\)\].*/\1/' \
	/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
START_S=$SECONDS
# Memory this VM has not touched for a while is slow to hand out the first
# time (the host backs it then), and nothing here controls which pages a
# workload or a tmpfs gets: touch enough memory once so that the figures and
# the limits they are compared with all get memory the host already backs.
if out=$("$BIN/firsttouch" anon "$WARMUP_MIB"); then
	log "warm-up: $WARMUP_MIB MiB of anonymous memory touched at $(awk -v o="$out" \
		'BEGIN { split(o, f, " "); printf "%.2f", f[1] / f[2] }') GB/s (not a figure)"
else
	log "warm-up failed: $BIN/firsttouch anon $WARMUP_MIB"
fi
for ((round = 1; round <= RUNS; round++)); do
	log "round $round/$RUNS: limits, memhog $SIZES_MIB MiB"
	measure_limits
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

figure limit.tmpfs limit "$LIMIT_MIB" tmpfs_write GB/s %.3f \
	"machine limit: first-touch write of $LIMIT_MIB MiB into a new file on a fresh tmpfs, with $LIMIT_CHUNK_KIB KiB write() calls from one pre-touched buffer (open to close); GB = 1e9 bytes" \
	'"name":"tmpfs_write"'
figure limit.anon limit "$LIMIT_MIB" anon_first_touch GB/s %.3f \
	"machine limit: mmap of $LIMIT_MIB MiB of private anonymous memory and memset of every byte (page faults, kernel zeroing, then the write); GB = 1e9 bytes" \
	'"name":"anon_first_touch"'

for mib in $SIZES_MIB; do
	k=mem$mib
	is_target=0
	[ "$mib" = 1024 ] && is_target=1
	figure "$k.dump.wall" dump "$mib" wall_time ms %.1f \
		"wall time of 'ferry dump -t PID -D DIR' (fork+exec to exit) of memhog holding $mib MiB of non-zero private anonymous memory, images on tmpfs"
	figure "$k.dump.frozen" dump "$mib" frozen_time ms %.1f \
		"time the target was frozen during that dump (frozen_ns of the inventory's stats)"
	figure "$k.dump.gbps" dump "$mib" throughput GB/s %.3f \
		"bytes_written (inventory stats: page data written) divided by the dump's wall time; GB = 1e9 bytes" \
		"$(ratio_fields "$k.dump.gbps" limit.tmpfs tmpfs_write \
			"$([ $is_target = 1 ] && echo $TARGET_DUMP_RATIO)")"
	figure "$k.dump.rss" dump "$mib" peak_rss MiB %.1f \
		"peak resident set of the ferry dump process (ru_maxrss from wait4)" \
		"$([ $is_target = 1 ] && below_target "$k.dump.rss" $TARGET_DUMP_RSS_MIB MiB)"
	figure "$k.restore.wall" restore "$mib" wall_time ms %.1f \
		"wall time of 'ferry restore -D DIR -d --pidfile F' of that image (fork+exec to exit; it exits once the process runs)"
	figure "$k.restore.logged" restore "$mib" ferry_time ms %.1f \
		"ferry's own 'pid N restored in X ms' (from its start of the restore to the process running; excludes exec and exit)"
	figure "$k.restore.gbps" restore "$mib" throughput GB/s %.3f \
		"bytes of page data in the image (the dump's bytes_written) divided by the restore's wall time; GB = 1e9 bytes" \
		"$(ratio_fields "$k.restore.gbps" limit.anon anon_first_touch \
			"$([ $is_target = 1 ] && echo $TARGET_RESTORE_RATIO)")"
	figure "$k.restore.rss" restore "$mib" peak_rss MiB %.1f \
		"peak resident set of the ferry restore process (ru_maxrss from wait4; includes page-cache pages of the image it maps, e.g. to verify checksums)"
done

if [ -n "$PY" ]; then
	for entries in $PY_DICT_SIZES; do
		k=py$entries
		image_mib=$(median "$k.dump.bytes") &&
			image_mib=$(awk -v b="$image_mib" 'BEGIN { printf "%.1f", b / 1048576 }')
		py_fields="\"dict_entries\":$entries,\"image_mib\":${image_mib:-null}"
		py_what="python3 -c script that built a dict of $entries entries and sleeps in time.sleep (image_mib: MiB of page data in its image); images on tmpfs"
		figure "$k.restore.wall" python "" restore_wall_time ms %.2f \
			"wall time of 'ferry restore -D DIR -d --pidfile F' (fork+exec to exit: from start to running) of a $py_what" \
			"$py_fields,$(below_target "$k.restore.wall" $TARGET_PY_RESTORE_MS ms)"
		figure "$k.restore.logged" python "" restore_time ms %.2f \
			"ferry's own 'pid N restored in X ms' (excludes exec and exit) for the restore of a $py_what" \
			"$py_fields,$(below_target "$k.restore.logged" $TARGET_PY_RESTORE_MS ms)"
		figure "$k.dump.wall" python "" dump_wall_time ms %.1f \
			"wall time of 'ferry dump -t PID -D DIR' of a $py_what" "$py_fields"
		figure "$k.dump.frozen" python "" dump_frozen_time ms %.1f \
			"time that python3 process was frozen during the dump (frozen_ns of the inventory's stats)" \
			"$py_fields"
	done
fi

if [ "$FAILED" != 0 ]; then
	log "$FAILED run(s) failed; their figures count only the runs that worked"
	exit 1
fi
exit 0
