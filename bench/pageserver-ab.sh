#!/bin/bash
# bench/pageserver-ab.sh BUILD_A BUILD_B: which of two builds dumps faster
# through a page server on loopback. One memhog of 1 GiB, a page server of
# each build (writing to one tmpfs), then QUADS rounds in ABBA order of
# `ferry dump --leave-running --page-server` with each build's ferry to its
# own server, so that drifts of this shared machine fall on both alike. Prints
# each build's wall times (ms, from fork to exit), sorted, and their median,
# as one JSON object per build on stdout; progress on stderr.
#
# Fresh memory is fast or several times slower by lottery here, so single
# dumps swing from 0.33 s to 2 s: compare the medians and the lower halves of
# many runs (QUADS, default 10: 20 dumps each). Root only; kills only its own
# processes and removes its tmpfs and temporary directory on exit.
set -u
QUADS=${QUADS:-10}
MIB=1024
READY_TIMEOUT=60
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ $# != 2 ]; then
	echo "usage: bench/pageserver-ab.sh BUILD_A BUILD_B" >&2
	exit 2
fi
bench_init pageserver-ab.sh "$1"
FERRY_A=$FERRY
bench_init pageserver-ab.sh "$2"
FERRY_B=$FERRY
positive QUADS
need_memory $((2 * MIB + 512))

bench_workdir ferry-bench-psab
compile "$WORK/bin" memhog
mount_tmpfs $((MIB + 512))m ferry-bench-psab

now() { date +%s%N; }

declare -A BIN PORT
BIN[A]=$FERRY_A
BIN[B]=$FERRY_B
for v in A B; do
	PORT[$v]=$((20000 + RANDOM % 40000))
	"${BIN[$v]}" page-server -D "$MNT/srv$v" --port "${PORT[$v]}" --address 127.0.0.1 -d \
		--pidfile "$WORK/ps$v.pid" -o "$WORK/ps$v.log" || die "page server of $v failed"
	track "$(cat "$WORK/ps$v.pid")"
done
start_workload memhog "$WORK/bin/memhog" "$MIB" || die "memhog did not start"
hog=$WL_PID

for q in $(seq 1 "$QUADS"); do
	for v in A B B A; do
		t0=$(now)
		"${BIN[$v]}" dump -t "$hog" -D "$WORK/img$v" --leave-running --page-server \
			--address 127.0.0.1 --port "${PORT[$v]}" -o "$WORK/dump$v.log" ||
			die "dump with $v failed (see $WORK/dump$v.log; KEEP=1 keeps it)"
		t1=$(now)
		rm -rf "$MNT/srv$v/img$v" "$WORK/img$v"
		add "$v" $(((t1 - t0) / 1000000))
	done
	log "round $q of $QUADS"
done

for v in A B; do
	# shellcheck disable=SC2086 # SAMPLES[v] is a list of numbers, split on purpose
	sorted=$(printf '%s\n' ${SAMPLES[$v]} | sort -g | paste -sd, -)
	med=$(median "$v")
	echo "{\"bench\": \"pageserver-ab\", \"build\": \"$v\", \"ferry\": \"${BIN[$v]}\", \"mib\": $MIB, \"median_ms\": $med, \"walls_ms_sorted\": [$sorted]}"
done
