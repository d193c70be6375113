#!/bin/bash
# bench/precopy.sh BUILD: incremental pre-copy (issue 3); one JSON object per
# figure on stdout, progress and problems on stderr.
#
# The workload is bench/dirtier.c: MIB (1024) MiB of non-zero private anonymous
# memory, dirtying 1% of its pages per second (random pages, in 10 ms steps).
# Each run does, with images on a tmpfs this script mounts:
#   uffd-wp  a chain of ROUNDS (5) rounds, one second of dirtying between the
#            end of a round and the start of the next: ROUNDS-1 pre-dumps
#            (the first arms the tracking, each later one --prev-images-dir the
#            one before), then the dirtier is told to stop (SIGUSR1) and the final
#            `ferry dump --prev-images-dir ... --track-mem --leave-running`; then
#            a plain `ferry dump` of the same, now unchanging, process: the flat
#            image. Then RESTORES (1) pairs of restores, the chain and the flat
#            image, in alternating order; each restored process must hold the
#            memory the dirtier had when it stopped (a checksum, SIGUSR2).
#   none     the same chain with `pre-dump --no-dirty-tracking` (every round
#            copies everything); the final dump has no tracking to use either.
# Figures (medians over RUNS (3) runs; every sample listed):
#   tracking_cost      scan_ns of rounds 2..ROUNDS (after the first arming):
#                      PAGEMAP_SCAN including re-arming   target (uffd-wp) < 5 ms
#   predump_frozen     frozen_ns of pre-dump rounds 2..ROUNDS-1  target < 20 ms
#   final_frozen       frozen_ns of the final dump               target < 50 ms
#   final_image_size   bytes_written of the final dump (MiB)
#   and, for reading them: the first round's scan and freeze, pages written per
#   round, each round's total time, the flat dump's freeze
#   restore            ferry's "restored in X ms" and the wall time of
#                      `ferry restore -d`, through the chain of ROUNDS and from
#                      the flat image          target: chain no slower than flat
# bench/README.md ("Pre-copy") has the details.
#
# Needs root (tmpfs, ptrace), cc. Exit status 0 if every step worked, 1 if one
# failed (figures then count only what worked), 2 if it could not start. Kills
# only the processes it started (by pid, checked against their start time),
# unmounts its tmpfs and removes its temporary directory on exit.

set -u

RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-5}
RESTORES=${RESTORES:-1}
MIB=${MIB:-1024}
DIRTY_PCT=1
INTERVAL_MS=1000
WARMUP_MIB=${WARMUP_MIB:-4096}
READY_TIMEOUT=60
CMD_TIMEOUT=120

# targets of issue 3 (the uffd-wp backend)
TARGET_TRACK_MS=5
TARGET_PREDUMP_FROZEN_MS=20
TARGET_FINAL_FROZEN_MS=50

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Progress goes to fd 3 (a copy of stderr): the runs go with stderr muted, or
# the shell would report every dumped or killed workload.
log_to_fd3

bench_init precopy.sh "$@"
positive RUNS ROUNDS RESTORES MIB
[[ $WARMUP_MIB =~ ^[0-9]+$ ]] || die "WARMUP_MIB must be a number, not '$WARMUP_MIB'"
[ "$ROUNDS" -ge 3 ] || die "ROUNDS must be at least 3 (round 1 arms, a steady pre-dump round, the final dump)"
"$FERRY" pre-dump --help 2>&1 | grep -q -- --no-dirty-tracking || die "ferry pre-dump has no --no-dirty-tracking"

PAGES=$((MIB * 256))
RATE=$((PAGES * DIRTY_PCT / 100))
[ "$RATE" -ge 1 ] || die "MIB $MIB is too small to dirty $DIRTY_PCT% per second"
# the fallback's chain holds ROUNDS full copies while its workload runs
TMPFS_MIB=$(((ROUNDS + 1) * MIB + 256))
need_memory $((TMPFS_MIB + 2 * MIB + 512))

compile "$BUILD/bench" dirtier
DIRTIER=$BUILD/bench/dirtier
bench_workdir ferry-bench-precopy
# helpers of our own, not part of ferry: built into the temporary directory
compile "$WORK" timeit firsttouch
TIMEIT=$WORK/timeit

# ---------------------------------------------------------------- processes

# keepers_of PID: the pids of ferry's tracking keepers for PID (processes of
# this ferry binary whose command line is a pre-dump of -t PID).
keepers_of()
{
	local d cmd
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = "$FERRY" ] || continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		[[ " $cmd" == *" pre-dump "* && " $cmd " == *" -t $1 "* ]] || continue
		pid_alive "${d#/proc/}" && echo "${d#/proc/}"
	done
}

# note_keepers PID: remember the keepers of PID, so that cleanup can end them
# should ferry leave one behind.
note_keepers()
{
	local k start entry known
	for k in $(keepers_of "$1"); do
		start=$(proc_starttime "$k") || continue
		known=0
		for entry in "${KEEPERS[@]}"; do
			[ "$entry" = "$k:$start" ] && known=1
		done
		[ "$known" = 1 ] || KEEPERS+=("$k:$start")
	done
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup()
{
	local entry pid
	trap - EXIT INT TERM HUP
	# a dirtier with tracking armed: ask ferry to stop it first
	for entry in "${TRACKED[@]}"; do
		pid=${entry%%:*}
		ours "$pid" && pid_alive "$pid" && [ -n "$(keepers_of "$pid")" ] &&
			timeout -k 2 10 "$FERRY" untrack -t "$pid" >/dev/null 2>&1 3>&-
	done
	kill_tracked
	# keepers end with their target; one that does not is a ferry bug
	for entry in "${KEEPERS[@]}"; do
		pid=${entry%%:*}
		[ "$(proc_starttime "$pid")" = "${entry#*:}" ] || continue
		gone "$pid" 30 && continue
		log "ferry problem: tracking keeper $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) outlived its target; killing it"
		kill -KILL "$pid" 2>/dev/null
	done
	unmount_tmpfs
	remove_workdir
}

now_ms()
{
	local t
	t=$(date +%s%N)
	echo $((t / 1000000))
}

# sleep_until MS: sleep until now_ms reaches MS (at least 50 ms).
sleep_until()
{
	local left=$(($1 - $(now_ms)))
	[ "$left" -lt 50 ] && left=50
	sleep "$(awk -v m="$left" 'BEGIN { printf "%.3f", m / 1000 }')"
}

# start_dirtier: start the workload (lib.sh's start_workload; its checksums on
# SIGUSR2 go to WL_SUMS). Sets WL_PID, WL_OUT and WL_SUMS.
start_dirtier()
{
	WL_SUMS=$WORK/dirtier.$((SEQ + 1)).sums
	: >"$WL_SUMS"
	start_workload dirtier "$DIRTIER" "$MIB" "$RATE" "$WL_SUMS"
}

# ---------------------------------------------------------------- ferry

# read_stats DIR: the inventory's statistics of the image in DIR into ST
# (frozen_ns, scan_ns, pages_written, pages_in_parent, bytes_written,
# total_ns) and ST[parent] (its parent_path, or nothing).
declare -A ST
read_stats()
{
	local json k v
	ST=()
	json=$("$FERRY" show --json "$1/inventory.img" 2>&1) || {
		log "FAILED: $FERRY show --json $1/inventory.img: $json"
		FAILED=$((FAILED + 1))
		return 1
	}
	for k in frozen_ns scan_ns pages_written pages_in_parent bytes_written total_ns; do
		v=$(json_number "$json" "$k")
		if [ -z "$v" ]; then
			log "FAILED: $FERRY show --json $1/inventory.img has no $k"
			FAILED=$((FAILED + 1))
			return 1
		fi
		ST[$k]=$v
	done
	ST[parent]=$(sed -n 's/^[[:space:]]*"parent_path":[[:space:]]*"\(.*\)".*/\1/p' <<<"$json" | head -n 1)
	return 0
}

ms()
{
	awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e6 }'
}

# ---------------------------------------------------------------- one chain

# restore_one KIND IMG PID SUM: restore IMG, check that PID runs again with
# the memory whose checksum is SUM (asked with SIGUSR2, answered in WL_SUMS),
# record ferry's time and the wall time under KIND, kill it.
restore_one()
{
	local kind=$1 img=$2 pid=$3 sum=$4 name new logged line size
	name=restore.$kind.$SEQ.$RANDOM
	size=$(stat -c %s "$WL_SUMS")
	ferry_timed "$name" restore -D "$img" -d --pidfile "$WORK/$name.pid" || {
		read_pidfile "$WORK/$name.pid"
		[ -n "$NEW" ] && kill_pid "$NEW"
		return 1
	}
	read_pidfile "$WORK/$name.pid"
	check_restored "$img" "$pid" "$MIB" || return 1
	new=$NEW
	kill -USR2 "$new"
	line=$(wait_line "$WL_SUMS" "$size" '^sum ' 60)
	kill_pid "$new"
	# The restored process is not our child: its zombie waits for init, and
	# ferry's next restore of this pid would wait for that inside its own time.
	reaped "$new" || log "WARNING: pid $new is still not reaped 10 s after it died"
	if [ "$line" != "sum $sum" ]; then
		log "FAILED: the process restored from $img (ferry restore -D $img -d) holds different memory: '${line:-no answer to SIGUSR2}', expected 'sum $sum'"
		FAILED=$((FAILED + 1))
		return 1
	fi
	logged=$(restored_in "$WORK/$name.log")
	[ -n "$logged" ] || return 1
	add "restore.$kind.logged" "$logged"
	add "restore.$kind.wall" "$(ms "$T_WALL_NS")"
	RESTORED_MS=$logged
	return 0
}

# chain BACKEND RUN: one chain of ROUNDS rounds of a fresh dirtier (BACKEND
# uffd-wp or none); for uffd-wp also the flat image and the restores.
chain()
{
	local b=$1 run=$2 dir pid k t0 name stop sum chain_ms flat_ms i order kind
	local -a cmd
	start_dirtier || return 1
	pid=$WL_PID
	dir=$MNT/$b.$run
	mkdir -p "$dir"
	for ((k = 1; k < ROUNDS; k++)); do
		# one second of dirtying between the end of a round and the next
		[ "$k" -gt 1 ] && sleep_until $((t0 + INTERVAL_MS))
		name=$b.$run.r$k
		cmd=(pre-dump -t "$pid" -D "$dir/r$k")
		[ "$k" -gt 1 ] && cmd+=(--prev-images-dir "../r$((k - 1))")
		[ "$b" = none ] && cmd+=(--no-dirty-tracking)
		ferry_timed "$name" "${cmd[@]}" || { kill_pid "$pid"; rm -rf "$dir"; return 1; }
		[ "$b" = uffd-wp ] && note_keepers "$pid"
		read_stats "$dir/r$k" || { kill_pid "$pid"; rm -rf "$dir"; return 1; }
		log "  $b run $run round $k (pre-dump): $(ms "${ST[frozen_ns]}") ms frozen, scan $(ms "${ST[scan_ns]}") ms," \
			"${ST[pages_written]} pages written, ${ST[pages_in_parent]} in parent, $(ms "${ST[total_ns]}") ms in all"
		if [ "$k" = 1 ]; then
			add "$b.first.scan" "$(ms "${ST[scan_ns]}")"
			add "$b.first.frozen" "$(ms "${ST[frozen_ns]}")"
			add "$b.first.total" "$(ms "${ST[total_ns]}")"
		else
			add "$b.scan" "$(ms "${ST[scan_ns]}")"
			add "$b.frozen" "$(ms "${ST[frozen_ns]}")"
			add "$b.pages" "${ST[pages_written]}"
			add "$b.total" "$(ms "${ST[total_ns]}")"
		fi
		t0=$(now_ms)
	done
	# the last interval of dirtying, then a fixed state for the final dump
	sleep_until $((t0 + INTERVAL_MS))
	kill -USR1 "$pid"
	stop=$(wait_line "$WL_OUT" 0 '^stopped ' 60) || {
		log "FAILED: the dirtier (pid $pid) did not stop on SIGUSR1: $(tail -n 2 "$WL_OUT")"
		FAILED=$((FAILED + 1))
		kill_pid "$pid"
		rm -rf "$dir"
		return 1
	}
	sum=${stop##* sum }
	name=$b.$run.final
	ferry_timed "$name" dump -t "$pid" -D "$dir/r$ROUNDS" --prev-images-dir "../r$((ROUNDS - 1))" \
		--track-mem --leave-running || { kill_pid "$pid"; rm -rf "$dir"; return 1; }
	if ! pid_alive "$pid"; then
		log "FAILED: pid $pid no longer runs after ferry dump --leave-running"
		FAILED=$((FAILED + 1))
		rm -rf "$dir"
		return 1
	fi
	if read_stats "$dir/r$ROUNDS"; then
		log "  $b run $run round $ROUNDS (final dump): $(ms "${ST[frozen_ns]}") ms frozen, scan $(ms "${ST[scan_ns]}") ms," \
			"${ST[pages_written]} pages written, ${ST[pages_in_parent]} in parent, $(ms "${ST[total_ns]}") ms in all"
		add "$b.scan" "$(ms "${ST[scan_ns]}")"
		add "$b.final.frozen" "$(ms "${ST[frozen_ns]}")"
		add "$b.final.mib" "$(awk -v b="${ST[bytes_written]}" 'BEGIN { printf "%.3f", b / 1048576 }')"
		add "$b.final.pages" "${ST[pages_written]}"
	fi
	# the final dump ends the tracking: no keeper may be left
	for ((i = 0; i < 40; i++)); do
		[ -z "$(keepers_of "$pid")" ] && break
		sleep 0.05
	done
	if [ -n "$(keepers_of "$pid")" ]; then
		log "ferry problem: tracking keeper(s) $(keepers_of "$pid" | tr '\n' ' ')of pid $pid still run 2 s after 'ferry dump --leave-running' ended the chain"
		note_keepers "$pid"
	fi

	if [ "$b" = none ]; then
		kill_pid "$pid"
		rm -rf "$dir"
		return 0
	fi

	# the flat image of the same state: the dirtier no longer writes
	name=$b.$run.flat
	ferry_timed "$name" dump -t "$pid" -D "$dir/flat"
	local rc=$?
	wait "$pid" 2>/dev/null
	if [ "$rc" != 0 ]; then
		kill_pid "$pid"
		rm -rf "$dir"
		return 1
	fi
	gone "$pid" 100 || { log "FAILED: pid $pid still runs after ferry dump"; FAILED=$((FAILED + 1)); kill_pid "$pid"; }
	if read_stats "$dir/flat"; then
		add "flat.frozen" "$(ms "${ST[frozen_ns]}")"
		add "flat.mib" "$(awk -v b="${ST[bytes_written]}" 'BEGIN { printf "%.3f", b / 1048576 }')"
		if [ -n "${ST[parent]}" ] || [ "${ST[pages_in_parent]}" != 0 ]; then
			log "FAILED: the plain dump $dir/flat is not flat: parent '${ST[parent]}', ${ST[pages_in_parent]} pages in parent"
			FAILED=$((FAILED + 1))
		fi
	fi
	for ((i = 1; i <= RESTORES; i++)); do
		if (((run + i) % 2)); then order="flat chain"; else order="chain flat"; fi
		chain_ms=""
		flat_ms=""
		for kind in $order; do
			RESTORED_MS=""
			if [ "$kind" = chain ]; then
				restore_one chain "$dir/r$ROUNDS" "$pid" "$sum" && chain_ms=$RESTORED_MS
			else
				restore_one flat "$dir/flat" "$pid" "$sum" && flat_ms=$RESTORED_MS
			fi
		done
		log "  restore run $run pair $i: chain of $ROUNDS ${chain_ms:-?} ms, flat ${flat_ms:-?} ms (ferry's 'restored in')"
		[ -n "$chain_ms" ] && [ -n "$flat_ms" ] &&
			add restore.ratio "$(awk -v c="$chain_ms" -v f="$flat_ms" 'BEGIN { print c / f }')"
	done
	rm -rf "$dir"
	return 0
}

# ---------------------------------------------------------------- main

mount_tmpfs "${TMPFS_MIB}m" ferry-bench-precopy

log "ferry $FERRY; $RUNS runs of chains of $ROUNDS rounds ($((ROUNDS - 1)) pre-dumps + final dump)," \
	"$INTERVAL_MS ms of dirtying between rounds; dirtier $MIB MiB, $RATE pages/s ($DIRTY_PCT%/s); kernel $(uname -r), $(nproc) CPUs"
START_S=$SECONDS
warm_up "$WORK/firsttouch" "$WARMUP_MIB"
for ((run = 1; run <= RUNS; run++)); do
	# alternate which backend goes first
	if ((run % 2)); then backends="uffd-wp none"; else backends="none uffd-wp"; fi
	for b in $backends; do
		log "run $run/$RUNS: $b"
		chain "$b" "$run" 2>/dev/null
	done
done
log "done in $((SECONDS - START_S)) s"

# ---------------------------------------------------------------- figures

# figure_of KEY BACKEND METRIC UNIT FORMAT WHAT [EXTRA]: one JSON object
# (lib.sh's figure), with the workload's parameters.
figure_of()
{
	local head="\"bench\":\"precopy\""
	[ -n "$2" ] && head="$head,\"backend\":\"$2\""
	head="$head,\"size_mib\":$MIB,\"dirty_pages_per_s\":$RATE,\"rounds\":$ROUNDS"
	figure "$1" "$head" "$3${2:+ ($2)}" "$3" "$4" "$5" "$6" "${7:-}"
}

for b in uffd-wp none; do
	t=$([ "$b" = uffd-wp ] && echo 1)
	figure_of "$b.scan" "$b" tracking_cost ms %.3f \
		"steady-state tracking cost: scan_ns (inventory stats: time in PAGEMAP_SCAN, including re-arming) of rounds 2..$ROUNDS of each chain (pre-dumps after the first arming, and the final dump), for $MIB MiB" \
		"$([ -n "$t" ] && below_target "$b.scan" $TARGET_TRACK_MS ms)"
	figure_of "$b.frozen" "$b" predump_frozen ms %.3f \
		"time frozen per pre-dump round: frozen_ns of pre-dump rounds 2..$((ROUNDS - 1))" \
		"$([ -n "$t" ] && below_target "$b.frozen" $TARGET_PREDUMP_FROZEN_MS ms)"
	figure_of "$b.final.frozen" "$b" final_frozen ms %.3f \
		"frozen_ns of the final 'ferry dump --prev-images-dir ../r$((ROUNDS - 1)) --track-mem --leave-running' (1 s after the last pre-dump)" \
		"$([ -n "$t" ] && below_target "$b.final.frozen" $TARGET_FINAL_FROZEN_MS ms)"
	figure_of "$b.final.mib" "$b" final_image_size MiB %.2f \
		"bytes_written of the final dump (page data in its image; the rest is in the parent rounds), MiB" \
		"\"pages_written\":$(median "$b.final.pages" || echo null)"
	figure_of "$b.pages" "$b" round_pages_written pages %.0f \
		"pages_written of pre-dump rounds 2..$((ROUNDS - 1)) (the dirtier writes $RATE random pages per second)"
	figure_of "$b.total" "$b" predump_round_time ms %.1f \
		"total_ns of pre-dump rounds 2..$((ROUNDS - 1)): the whole round, most of it with the process running"
	figure_of "$b.first.scan" "$b" first_round_scan ms %.3f \
		"scan_ns of round 1 (arms the tracking; not steady state)"
	figure_of "$b.first.frozen" "$b" first_round_frozen ms %.3f \
		"frozen_ns of round 1 (the first pre-dump: copies every page, with the process running)"
	figure_of "$b.first.total" "$b" first_round_time ms %.1f \
		"total_ns of round 1"
done

figure_of flat.frozen uffd-wp flat_dump_frozen ms %.1f \
	"frozen_ns of the plain 'ferry dump' (no parent) of the stopped dirtier: the freeze without pre-copy" \
	"\"image_mib\":$(median flat.mib || echo null)"
flat=$(median restore.flat.logged) || flat=""
cmp=""
if [ -n "$flat" ] && median restore.chain.logged >/dev/null; then
	chainm=$(median restore.chain.logged)
	cmp="\"flat_value\":$(awk -v x="$flat" 'BEGIN { printf "%.2f", x }'),\"ratio_to_flat\":$(awk -v c="$chainm" -v f="$flat" 'BEGIN { printf "%.3f", c / f }')"
	r=$(median restore.ratio) && cmp="$cmp,\"ratio_per_pair_median\":$(awk -v x="$r" 'BEGIN { printf "%.3f", x }')"
	cmp="$cmp,\"target\":\"<= flat (no slower than the flat image)\",\"target_met\":$(awk -v c="$chainm" -v f="$flat" 'BEGIN { print (c <= f) ? "true" : "false" }')"
fi
figure_of restore.chain.logged uffd-wp restore_chain_time ms %.2f \
	"ferry's 'restored in X ms' for 'ferry restore -D r$ROUNDS -d' through the chain of $ROUNDS ($((ROUNDS - 1)) uffd-wp pre-dumps + final dump), the dirtier stopped before the final dump; ratio_per_pair_median: chain/flat of restores done back to back" \
	"$cmp"
figure_of restore.flat.logged uffd-wp restore_flat_time ms %.2f \
	"ferry's 'restored in X ms' for 'ferry restore -d' of the flat image: a plain 'ferry dump' of the same process in the same state"
figure_of restore.chain.wall uffd-wp restore_chain_wall_time ms %.1f \
	"wall time of 'ferry restore -D r$ROUNDS -d' through the chain (fork+exec to exit, i.e. until the process runs)"
figure_of restore.flat.wall uffd-wp restore_flat_wall_time ms %.1f \
	"wall time of 'ferry restore -d' of the flat image"

if [ "$FAILED" != 0 ]; then
	log "$FAILED step(s) failed; the figures count only what worked"
	exit 1
fi
exit 0
