#!/bin/bash
# bench/pageserver.sh BUILD: a 1 GiB dump through `ferry page-server` on
# loopback, in the same run as the two limits it is held against:
#   tcp     a plain TCP copy of 1 GiB between two local processes (1 MiB writes)
#   tmpfs   a write of 1 GiB into a fresh file on a fresh tmpfs (the sink)
#   dump    ferry dump --page-server of memhog 1024 MiB, server writing to tmpfs
# One JSON object per figure on stdout; progress on stderr. Target (issue 4):
# dump GB/s >= 0.6 * min(tcp, tmpfs). RUNS rounds (default 3), interleaved;
# each figure is the median. Root only (tmpfs, ptrace); kills only its own
# processes, removes its tmpfs and temporary directory on exit.
set -u
RUNS=${RUNS:-3}
MIB=1024
READY_TIMEOUT=60
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init pageserver.sh "$@"
positive RUNS
"$FERRY" dump --help | grep -q -- --page-server || die "ferry dump has no --page-server yet"
PY=/usr/bin/python3
[ -x "$PY" ] || die "needs /usr/bin/python3 for the TCP limit"

bench_workdir ferry-bench-ps
compile "$WORK/bin" memhog
mount_tmpfs 3g ferry-bench-ps

now() { date +%s%N; }
# the middle one of the numbers on stdin (the lower middle of an even count)
median_of() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

tmpfs_limit()
{
	local t0 t1
	t0=$(now)
	dd if=/dev/zero of="$MNT/fill" bs=1M count="$MIB" status=none || return 1
	t1=$(now)
	rm -f "$MNT/fill"
	echo $((t1 - t0))
}

# dump_once ROUND: one dump of memhog through a page server; its wall time
# (ns) into DUMP_NS.
dump_once()
{
	local round=$1 port hog t0 t1 ps
	port=$((20000 + RANDOM % 40000))
	"$FERRY" page-server -D "$MNT/srv" --port "$port" --address 127.0.0.1 -d \
		--pidfile "$WORK/ps.pid" -o "$WORK/ps.$round.log" || return 1
	ps=$(cat "$WORK/ps.pid")
	track "$ps"
	start_workload memhog "$WORK/bin/memhog" "$MIB" || { kill "$ps"; return 1; }
	hog=$WL_PID
	t0=$(now)
	"$FERRY" dump -t "$hog" -D "$WORK/src.$round" --page-server --address 127.0.0.1 \
		--port "$port" -o "$WORK/dump.$round.log" >&2 || { kill "$ps"; return 1; }
	t1=$(now)
	wait "$hog" 2>/dev/null
	kill -TERM "$ps"; wait "$ps" 2>/dev/null
	rm -rf "$MNT/srv" "$WORK/src.$round"
	DUMP_NS=$((t1 - t0))
}

tcp=(); fs=(); dump=()
for r in $(seq 1 "$RUNS"); do
	log "round $r of $RUNS"
	ns=$(tcp_limit) && [ "$ns" -gt 0 ] || die "tcp limit failed"
	tcp+=("$ns")
	fs+=("$(tmpfs_limit)") || die "tmpfs limit failed"
	dump_once "$r" || die "dump through the page server failed (see $WORK; KEEP=1 keeps it)"
	dump+=("$DUMP_NS")
done
tcp_ns=$(printf '%s\n' "${tcp[@]}" | median_of)
fs_ns=$(printf '%s\n' "${fs[@]}" | median_of)
dump_ns=$(printf '%s\n' "${dump[@]}" | median_of)
tcp_g=$(gbps "$tcp_ns"); fs_g=$(gbps "$fs_ns"); dump_g=$(gbps "$dump_ns")
limit=$(awk -v a="$tcp_g" -v b="$fs_g" 'BEGIN { print (a < b ? a : b) }')
ratio=$(awk -v d="$dump_g" -v l="$limit" 'BEGIN { printf "%.2f", d / l }')
echo "{\"figure\": \"limit_tcp_loopback\", \"mib\": $MIB, \"gbps\": $tcp_g, \"runs\": $RUNS}"
echo "{\"figure\": \"limit_tmpfs_write\", \"mib\": $MIB, \"gbps\": $fs_g, \"runs\": $RUNS}"
echo "{\"figure\": \"dump_page_server_loopback\", \"mib\": $MIB, \"wall_ms\": $((dump_ns / 1000000)), \"gbps\": $dump_g, \"ratio_to_limit\": $ratio, \"target_ratio\": 0.6, \"runs\": $RUNS}"
