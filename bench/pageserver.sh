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
log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 2; }

[ $# = 1 ] || { echo "usage: bench/pageserver.sh BUILD" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
SRC=$(cd "$(dirname "$0")" && pwd)
FERRY=$BUILD/ferry
[ -x "$FERRY" ] || die "$FERRY is not built"
[ "$(id -u)" = 0 ] || die "needs root"
"$FERRY" dump --help | grep -q -- --page-server || die "ferry dump has no --page-server yet"
PY=/usr/bin/python3
[ -x "$PY" ] || die "needs /usr/bin/python3 for the TCP limit"

WORK=$(mktemp -d /tmp/ferry-bench-ps.XXXXXX) || die "mktemp"
MNT=$WORK/tmpfs
mkdir -p "$MNT" "$WORK/bin"
PIDS=()
cleanup()
{
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	mountpoint -q "$MNT" && umount "$MNT"
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cc -O2 -o "$WORK/bin/memhog" "$SRC/memhog.c" || die "cannot build memhog"
mount -t tmpfs -o size=3g tmpfs "$MNT" || die "cannot mount a tmpfs"

now() { date +%s%N; }
gbps() { awk -v b=$((MIB << 20)) -v ns="$1" 'BEGIN { printf "%.3f", b / ns }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

tcp_limit()
{
	"$PY" - "$MIB" <<'PYEOF'
import os, socket, sys, time
mib = int(sys.argv[1]); total = mib << 20
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
port = ls.getsockname()[1]
pid = os.fork()
if pid == 0:
    c = socket.create_connection(("127.0.0.1", port)); buf = b"\x5a" * (1 << 20)
    for _ in range(mib): c.sendall(buf)
    c.close(); os._exit(0)
s, _ = ls.accept(); buf = bytearray(1 << 20); got = 0
t0 = time.monotonic_ns()
while got < total:
    n = s.recv_into(buf)
    if not n: break
    got += n
t1 = time.monotonic_ns(); os.waitpid(pid, 0)
print(t1 - t0)
PYEOF
}

tmpfs_limit()
{
	local t0 t1
	t0=$(now)
	dd if=/dev/zero of="$MNT/fill" bs=1M count="$MIB" status=none || return 1
	t1=$(now)
	rm -f "$MNT/fill"
	echo $((t1 - t0))
}

dump_once()
{
	local round=$1 port out hog t0 t1 ps
	port=$((20000 + RANDOM % 40000))
	"$FERRY" page-server -D "$MNT/srv" --port "$port" --address 127.0.0.1 -d \
		--pidfile "$WORK/ps.pid" -o "$WORK/ps.$round.log" || return 1
	ps=$(cat "$WORK/ps.pid"); PIDS+=("$ps")
	out=$WORK/hog.$round.out
	# only stdio: an inherited fd (a pipe of the caller) would make the dump refuse
	(for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"; done
	 exec "$WORK/bin/memhog" "$MIB") >"$out" 2>&1 </dev/null &
	hog=$!; PIDS+=("$hog")
	for _ in $(seq 1 600); do grep -q ready "$out" && break; sleep 0.1; done
	t0=$(now)
	"$FERRY" dump -t "$hog" -D "$WORK/src.$round" --page-server --address 127.0.0.1 \
		--port "$port" -o "$WORK/dump.$round.log" >&2 || { kill "$ps"; return 1; }
	t1=$(now)
	wait "$hog" 2>/dev/null
	kill -TERM "$ps"; wait "$ps" 2>/dev/null
	rm -rf "$MNT/srv" "$WORK/src.$round"
	echo $((t1 - t0))
}

tcp=(); fs=(); dump=()
for r in $(seq 1 "$RUNS"); do
	log "round $r of $RUNS"
	tcp+=("$(tcp_limit)") || die "tcp limit failed"
	fs+=("$(tmpfs_limit)") || die "tmpfs limit failed"
	d=$(dump_once "$r") || die "dump through the page server failed (see $WORK)"
	dump+=("$d")
done
tcp_ns=$(printf '%s\n' "${tcp[@]}" | median)
fs_ns=$(printf '%s\n' "${fs[@]}" | median)
dump_ns=$(printf '%s\n' "${dump[@]}" | median)
tcp_g=$(gbps "$tcp_ns"); fs_g=$(gbps "$fs_ns"); dump_g=$(gbps "$dump_ns")
limit=$(awk -v a="$tcp_g" -v b="$fs_g" 'BEGIN { print (a < b ? a : b) }')
ratio=$(awk -v d="$dump_g" -v l="$limit" 'BEGIN { printf "%.2f", d / l }')
echo "{\"figure\": \"limit_tcp_loopback\", \"mib\": $MIB, \"gbps\": $tcp_g, \"runs\": $RUNS}"
echo "{\"figure\": \"limit_tmpfs_write\", \"mib\": $MIB, \"gbps\": $fs_g, \"runs\": $RUNS}"
echo "{\"figure\": \"dump_page_server_loopback\", \"mib\": $MIB, \"wall_ms\": $((dump_ns / 1000000)), \"gbps\": $dump_g, \"ratio_to_limit\": $ratio, \"target_ratio\": 0.6, \"runs\": $RUNS}"
