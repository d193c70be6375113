# bench/lib.sh: the shell helpers that the benchmark scripts share; sourced by
# bench/run.sh, bench/precopy.sh, bench/pageserver.sh and bench/lazy.sh.
#
# A script sources it, then calls bench_init (arguments, BUILD, FERRY, root),
# bench_workdir (WORK and the traps that clean up), and uses the rest as it
# needs. Everything here kills only processes recorded with track (by pid,
# checked against their start time).
#
# Variables it uses: RUNS, READY_TIMEOUT and CMD_TIMEOUT (seconds), TIMEIT
# (the timeit binary), MIB (for gbps and tcp_limit), KEEP (keep WORK on exit).
# shellcheck shell=bash

# ---------------------------------------------------------------- messages

# Progress and problems go to stderr, or to fd 3 after log_to_fd3.
LOG_FD=2
# shellcheck source=tests/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/procs.sh"

# log_to_fd3: make fd 3 a copy of stderr and log there, so that the runs can
# go with stderr muted (or the shell would report each killed workload).
log_to_fd3()
{
	exec 3>&2
	LOG_FD=3
}

log()
{
	echo "bench: $*" >&"$LOG_FD"
}

die()
{
	log "$*"
	exit 2
}

# ---------------------------------------------------------------- setup

# bench_init NAME "$@": check the arguments (one: the build directory) and
# that this runs as root; set BUILD, SRC (this directory), FERRY and CC.
bench_init()
{
	local name=$1
	shift
	if [ $# != 1 ]; then
		echo "usage: bench/$name BUILD" >&2
		exit 2
	fi
	BUILD=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
	SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	FERRY=$BUILD/ferry
	[ -x "$FERRY" ] || die "$FERRY is not built (run make first)"
	[ "$(id -u)" = 0 ] || die "needs root: ferry ptraces its targets (and a tmpfs is mounted)"
	CC=${CC:-cc}
}

# positive VAR...: die unless each VAR holds a positive number.
positive()
{
	local v
	for v in "$@"; do
		[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, not '${!v}'"
	done
}

# need_memory MIB: die unless MIB MiB of memory are available.
need_memory()
{
	local avail_kib
	avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
	[ "${avail_kib:-0}" -ge $(($1 << 10)) ] ||
		die "needs $1 MiB of available memory, $((${avail_kib:-0} >> 10)) MiB are"
}

# compile DIR PROG...: build each bench/PROG.c into DIR/PROG.
compile()
{
	local dir=$1 prog
	shift
	command -v "$CC" >/dev/null || die "no C compiler ($CC)"
	mkdir -p "$dir" || die "cannot create $dir"
	for prog in "$@"; do
		"$CC" -O2 -Wall -Wextra -Werror -o "$dir/$prog" "$SRC/$prog.c" ||
			die "cannot compile $SRC/$prog.c"
	done
}

# bench_workdir NAME: a temporary directory WORK (MNT: where mount_tmpfs puts
# its tmpfs); on exit, also by a signal, cleanup runs (a script may define its
# own cleanup after sourcing this file).
bench_workdir()
{
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || die "mktemp failed"
	MNT=$WORK/tmpfs
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# processes this script started or restored, and ferry keepers it found, as
# "pid:starttime"
TRACKED=()
KEEPERS=()
MOUNTED=0
SEQ=0
FAILED=0
WORK=""

# mount_tmpfs SIZE NAME: mount a tmpfs of SIZE (mount's size= syntax) on MNT.
mount_tmpfs()
{
	mkdir -p "$MNT" || die "cannot create $MNT"
	mount -t tmpfs -o "size=$1,mode=0700" "$2" "$MNT" || die "cannot mount a tmpfs on $MNT"
	MOUNTED=1
}

# unmount_tmpfs: unmount MNT if mount_tmpfs mounted it; a process killed just
# before may take a moment to release its files.
unmount_tmpfs()
{
	local i
	[ "$MOUNTED" = 1 ] || return 0
	for ((i = 0; i < 50; i++)); do
		umount "$MNT" 2>/dev/null && break
		sleep 0.1
	done
	if mountpoint -q "$MNT"; then
		log "cannot unmount $MNT: $(umount "$MNT" 2>&1); detaching it lazily"
		umount -l "$MNT"
	fi
	MOUNTED=0
}

# remove_workdir: remove WORK, unless KEEP is set.
remove_workdir()
{
	[ -n "$WORK" ] || return 0
	if [ -n "${KEEP:-}" ]; then
		log "files kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup()
{
	trap - EXIT INT TERM HUP
	kill_tracked
	unmount_tmpfs
	remove_workdir
}

# ---------------------------------------------------------------- processes



# track PID: remember PID (with its start time) as one of ours.
track()
{
	local start
	start=$(proc_starttime "$1") || return 0
	TRACKED+=("$1:$start")
}

# ours PID: true if PID is still the process recorded in TRACKED or KEEPERS.
ours()
{
	local entry now
	now=$(proc_starttime "$1") || return 1
	for entry in "${TRACKED[@]}" "${KEEPERS[@]}"; do
		[ "$entry" = "$1:$now" ] && return 0
	done
	return 1
}

# gone PID [TENTHS]: wait (up to TENTHS tenths of a second, default 100) until
# PID no longer runs; reap it if it is our child.
gone()
{
	local i
	for ((i = 0; i < ${2:-100} * 2; i++)); do
		pid_alive "$1" || { wait "$1" 2>/dev/null; return 0; }
		sleep 0.05
	done
	return 1
}

# reaped PID: wait (up to 10 s) until PID is gone entirely, zombie included.
reaped()
{
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -e "/proc/$1" ] || return 0
		sleep 0.01
	done
	return 1
}

# kill_pid PID: SIGKILL PID if it is still a process we started, and wait
# until it no longer runs (reaped if it is our child).
kill_pid()
{
	ours "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	gone "$1" || { log "process $1 still runs 10 s after SIGKILL"; return 1; }
}

# kill_tracked: SIGKILL every tracked process that still runs; reap our children.
kill_tracked()
{
	local entry pid
	for entry in "${TRACKED[@]}"; do
		pid=${entry%%:*}
		[ "$(proc_starttime "$pid")" = "${entry#*:}" ] && kill -KILL "$pid" 2>/dev/null
	done
	for entry in "${TRACKED[@]}"; do
		wait "${entry%%:*}" 2>/dev/null
	done
	return 0
}


# wait_line FILE FROM REGEX [SECONDS]: wait until FILE, from byte FROM on, has
# a line matching REGEX; print the last such line.
wait_line()
{
	local i line
	for ((i = 0; i < ${4:-30} * 20; i++)); do
		line=$(tail -c +$(($2 + 1)) "$1" 2>/dev/null | grep -E "$3" | tail -n 1)
		[ -n "$line" ] && { echo "$line"; return 0; }
		sleep 0.05
	done
	return 1
}

# start_workload NAME CMD ARGS...: start CMD with cwd WORK, stdin /dev/null,
# no fd above 2, output to WL_OUT ($WORK/NAME.N.out); wait (READY_TIMEOUT s)
# until it prints "ready". Sets WL_PID and WL_OUT. On failure says so, counts
# it in FAILED and kills what it started.
start_workload()
{
	local name=$1 i
	shift
	SEQ=$((SEQ + 1))
	WL_OUT=$WORK/$name.$SEQ.out
	(close_extra_fds && cd "$WORK" && exec "$@") </dev/null >"$WL_OUT" 2>&1 &
	WL_PID=$!
	track "$WL_PID"
	for ((i = 0; i < READY_TIMEOUT * 20; i++)); do
		grep -q '^ready$' "$WL_OUT" 2>/dev/null && return 0
		pid_alive "$WL_PID" || break
		sleep 0.05
	done
	log "FAILED: workload '$*' (pid $WL_PID) did not get ready: $(tail -n 3 "$WL_OUT")"
	FAILED=$((FAILED + 1))
	kill_pid "$WL_PID"
	return 1
}

# ---------------------------------------------------------------- ferry runs

# run_timed NAME CMD ARGS...: run CMD under TIMEIT with a time limit
# (CMD_TIMEOUT); its stdout and stderr go to $WORK/NAME.err. Sets T_WALL_NS,
# T_RSS_KIB. Returns the command's exit status.
run_timed()
{
	local name=$1 rc
	shift
	rm -f "$WORK/$name.time"
	timeout -k 5 "$CMD_TIMEOUT" "$TIMEIT" "$WORK/$name.time" "$@" \
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

# run_failed WHAT RC ERRFILE [LOG]: report a failed run on stderr, with its
# messages and the last errors and warnings of its log; count it in FAILED.
run_failed()
{
	FAILED=$((FAILED + 1))
	log "FAILED (exit $2): $1"
	sed 's/^/bench:   | /' "$3" >&"$LOG_FD"
	[ -n "${4:-}" ] && [ -s "$4" ] && grep -E 'error|warn' "$4" | tail -n 3 |
		sed 's/^/bench:   log| /' >&"$LOG_FD"
	return 0
}

# ferry_timed NAME ARGS...: ferry ARGS -v 2 -o $WORK/NAME.log under run_timed,
# stdin /dev/null; a failure is reported with run_failed.
ferry_timed()
{
	local name=$1 rc
	shift
	run_timed "$name" "$FERRY" "$@" -v 2 -o "$WORK/$name.log" </dev/null
	rc=$?
	[ "$rc" = 0 ] ||
		run_failed "$FERRY $* -v 2 -o $WORK/$name.log" "$rc" "$WORK/$name.err" "$WORK/$name.log"
	return "$rc"
}

# json_number JSON KEY: the first number "KEY": N in JSON (as `ferry show
# --json` prints it, one field a line).
json_number()
{
	sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([0-9][0-9]*\).*/\1/p" <<<"$1" | head -n 1
}

# read_pidfile FILE: the pid in FILE into NEW (tracked), or NEW empty.
read_pidfile()
{
	NEW=$(tr -d '[:space:]' <"$1" 2>/dev/null)
	if [[ $NEW =~ ^[0-9]+$ ]]; then
		track "$NEW"
	else
		NEW=""
	fi
}

# check_restored WHAT PID MIN_MIB: after a restore (NEW from read_pidfile),
# true if NEW is PID and runs; warns if it holds less than MIN_MIB MiB of
# anonymous memory. On failure says so, counts it and kills NEW.
check_restored()
{
	local rss_kib
	if [ "$NEW" != "$2" ] || ! pid_alive "$NEW"; then
		log "FAILED: restore of $1: the pid file says '$NEW' (expected $2), running: $(pid_alive "$NEW" && echo yes || echo no)"
		FAILED=$((FAILED + 1))
		[ -n "$NEW" ] && kill_pid "$NEW"
		return 1
	fi
	rss_kib=$(awk '/^RssAnon:/ { print $2 }' "/proc/$NEW/status" 2>/dev/null)
	[ "${rss_kib:-0}" -ge $(($3 * 1024)) ] ||
		log "WARNING: restored pid $NEW holds only ${rss_kib:-?} KiB of anonymous memory, expected >= $3 MiB"
	return 0
}

# restored_in LOG: ferry's own "restored in X ms" from a restore's log
# (nothing, and a warning, if it has none).
restored_in()
{
	local ms
	ms=$(sed -n 's/.*restored in \([0-9.][0-9.]*\) ms.*/\1/p' "$1" | tail -n 1)
	[ -n "$ms" ] || log "WARNING: no 'restored in X ms' line in $1"
	echo "$ms"
}

# ---------------------------------------------------------------- limits

# warm_up FIRSTTOUCH MIB: touch MIB MiB of anonymous memory once, not a
# figure. Memory this VM has not touched for a while is slow to hand out the
# first time (the host backs it then): afterwards the figures and the limits
# they are compared with all get memory the host already backs.
warm_up()
{
	local out
	[ "$2" -gt 0 ] || return 0
	if out=$("$1" anon "$2"); then
		log "warm-up: $2 MiB of anonymous memory touched at $(awk -v o="$out" \
			'BEGIN { split(o, f, " "); printf "%.2f", f[1] / f[2] }') GB/s (not a figure)"
	else
		log "warm-up failed: $1 anon $2"
	fi
}

# gbps NS: MIB MiB in NS nanoseconds, in GB/s (10^9 bytes per second).
gbps()
{
	awk -v b=$((MIB << 20)) -v ns="$1" 'BEGIN { printf "%.3f", b / ns }'
}

# tcp_limit: the nanoseconds a plain TCP copy of MIB MiB over loopback takes
# between two local processes (python3 as PY, 1 MiB writes); -1 if the
# receiver got less.
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
    if n == 0: break
    got += n
t1 = time.monotonic_ns()
os.waitpid(pid, 0)
print(t1 - t0 if got == total else -1)
PYEOF
}

# ---------------------------------------------------------------- figures

# Samples of each figure, by key: space-separated numbers.
declare -A SAMPLES

add()
{
	SAMPLES[$1]="${SAMPLES[$1]:-} $2"
}

# median KEY: the median of the samples of KEY (fails if it has none).
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

# figure KEY HEAD LABEL METRIC UNIT FORMAT WHAT [EXTRA]: print the JSON object
# of one figure: HEAD (ready JSON fields, no trailing comma), then metric,
# value (the median of KEY's samples, formatted with FORMAT) and unit, EXTRA
# (ready JSON fields, no leading comma), runs, samples and what. Prints
# nothing (and says so on stderr, naming LABEL) if KEY has no samples.
figure()
{
	local key=$1 head=$2 label=$3 metric=$4 unit=$5 format=$6 what=$7 extra=${8:-}
	local med s samples="" n=0
	med=$(median "$key") || {
		log "no successful sample for $label: figure left out"
		return 0
	}
	for s in ${SAMPLES[$key]}; do
		samples="$samples${samples:+,}$(fmt "$format" "$s")"
		n=$((n + 1))
	done
	printf '{%s,"metric":"%s","value":%s,"unit":"%s"' "$head" "$metric" "$(fmt "$format" "$med")" "$unit"
	[ -n "$extra" ] && printf ',%s' "$extra"
	printf ',"runs":%s,"samples":[%s],"what":%s}\n' "$n" "$samples" "$(json_str "$what")"
}

# below_target KEY TARGET UNIT: target fields for "median of KEY < TARGET".
below_target()
{
	local v
	v=$(median "$1") || return 0
	printf '"target":"< %s %s","target_met":%s' "$2" "$3" \
		"$(awk -v v="$v" -v t="$2" 'BEGIN { print (v < t) ? "true" : "false" }')"
}
