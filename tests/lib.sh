# shellcheck shell=bash
# Shared shell functions for the end-to-end tests in tests/e2e/.
#
# A test is sourced with FERRY (the ferry binary), WL (the built workloads and
# helpers) and T (a fresh temporary directory that belongs to the test) set, as
# tests/run.sh does (see tests/PROTOCOL.md). Run alone, a test makes its own T.
#
# Every process a test starts is tracked as "pid:starttime" (in _TRACKED and in
# $T/.pids, so that tests/run.sh can still find them if the test is killed).
# The cleanup trap kills a tracked pid only while it is still the same process:
# a pid that exited and was reused by someone else is left alone. A restored
# process has the same pid but a new start time, so it is tracked again.
#
# Exit codes: 0 pass, 1 fail (fail), 77 skip (skip).

set -u

: "${FERRY:?FERRY must name the ferry binary}"
: "${WL:?WL must name the directory of the built workloads}"

for _helper in waitfor pidwait; do
	if [ ! -x "$WL/$_helper" ]; then
		echo "FAIL: the test helper $WL/$_helper is not built"
		exit 1
	fi
done

if [ -z "${T:-}" ]; then
	T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e.XXXXXX")
	_LIB_OWNS_T=1
else
	_LIB_OWNS_T=0
fi
# Workloads make their temporary files in $TMPDIR: keep them in T.
export TMPDIR=$T

# Seconds allowed for a workload to get ready, to answer SIGUSR2, and for one
# ferry command. Generous: the machine may be busy with other builds.
READY_TIMEOUT=${READY_TIMEOUT:-20}
PASS_TIMEOUT=${PASS_TIMEOUT:-20}
FERRY_TIMEOUT=${FERRY_TIMEOUT:-60}

# Debian's own python3 (the one a fresh machine has), else whatever is on PATH.
if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
else
	PY=$(command -v python3 || echo python3)
fi

# shellcheck source=tests/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

_TRACKED=()
_SEQ=0

# ---------------------------------------------------------------- processes



# A field of /proc/PID/status ("State", "TracerPid", "NSpid", ...).
proc_status_field()
{
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null
}

proc_ppid()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "$2"
}

# Remember PID (as it is now) as started by this test.
track_pid()
{
	local pid=$1 start
	start=$(proc_starttime "$pid") || return 0
	_TRACKED+=("$pid:$start")
	echo "$pid:$start" >>"$T/.pids"
}

_kill_tracked()
{
	local entry pid start
	for entry in "${_TRACKED[@]}"; do
		pid=${entry%%:*}
		start=${entry#*:}
		[ "$(proc_starttime "$pid")" = "$start" ] && kill -KILL "$pid" 2>/dev/null
	done
	for entry in "${_TRACKED[@]}"; do
		pid=${entry%%:*}
		# reap our own children; others are reaped by their new parent
		wait "$pid" 2>/dev/null
	done
	return 0
}

cleanup()
{
	local rc=$?
	trap - EXIT TERM INT HUP
	_kill_tracked
	if [ "$_LIB_OWNS_T" = 1 ]; then
		rm -rf "$T"
	else
		rm -rf "${T:?}"/* "$T"/.pids
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'show_files; echo "FAIL: terminated (over the time limit?)"; exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---------------------------------------------------------------- verdicts

# Print the end of every output and log file the test made, for a failure
# report (tests/run.sh shows the last 30 lines of a failed test: the FAIL line
# comes last, these before it).
show_files()
{
	local f
	for f in "$T"/*.out "$T"/*.log; do
		[ -s "$f" ] || continue
		case ${f##*/} in
		dump.*.log | restore.*.log)
			echo "--- ${f##*/} (errors, last line)"
			{ grep -E 'error|warn' "$f" | tail -n 3; tail -n 1 "$f"; } | cut -c1-200
			;;
		*)
			echo "--- ${f##*/} (last 6 lines)"
			tail -n 6 "$f" | cut -c1-200
			;;
		esac
	done
}

fail()
{
	show_files
	echo "FAIL: $*"
	exit 1
}

skip()
{
	echo "SKIP: $*"
	exit 77
}

say()
{
	echo "# $*"
}

# ---------------------------------------------------------------- workloads


# bg_start NAME CMD ARGS...: start CMD in the background with cwd T, stdin
# /dev/null, stdout and stderr to $T/NAME.N.log. Sets BG_PID and BG_LOG.
bg_start()
{
	local name=$1
	shift
	_SEQ=$((_SEQ + 1))
	BG_LOG=$T/$name.$_SEQ.log
	(close_extra_fds && cd "$T" && exec "$@") </dev/null >"$BG_LOG" 2>&1 &
	BG_PID=$!
	track_pid "$BG_PID"
}

# wl_start NAME ARGS...: start workload NAME writing to $T/NAME.N.out.
# Sets WL_PID, WL_OUT and WL_LOG.
wl_start()
{
	local name=$1
	shift
	[ -x "$WL/$name" ] || fail "workload $name is not built ($WL/$name)"
	_SEQ=$((_SEQ + 1))
	WL_OUT=$T/$name.$_SEQ.out
	WL_LOG=$T/$name.$_SEQ.log
	(close_extra_fds && cd "$T" && exec "$WL/$name" "$WL_OUT" "$@") </dev/null >"$WL_LOG" 2>&1 &
	WL_PID=$!
	track_pid "$WL_PID"
}

# wl_ready NAME ARGS...: wl_start, then wl_wait_ready.
wl_ready()
{
	wl_start "$@"
	wl_wait_ready
}

# wait_line FILE REGEX [TIMEOUT]: wait for a line of FILE to match REGEX.
wait_line()
{
	"$WL/waitfor" "$1" "$2" "${3:-$PASS_TIMEOUT}" >/dev/null 2>&1
}

# wl_wait_ready [PID OUT]: wait for `ready`; skip if the workload says the
# kernel cannot do what it needs, fail if it failed or went away.
wl_wait_ready()
{
	local pid=${1:-$WL_PID} out=${2:-$WL_OUT}
	if ! wait_line "$out" '^(ready|FAIL.*|# unsupported.*)$' "$READY_TIMEOUT"; then
		pid_alive "$pid" || fail "workload $pid exited before it was ready"
		fail "workload $pid not ready within $READY_TIMEOUT s"
	fi
	if grep -q '^# unsupported' "$out"; then
		skip "workload: $(grep -m1 '^# unsupported' "$out" | sed 's/^# //')"
	fi
	grep -q '^FAIL' "$out" && fail "workload $pid: $(grep -m1 '^FAIL' "$out")"
	return 0
}

# wl_expect_pass PID OUT: send SIGUSR2, expect `PASS` in OUT and PID to exit.
wl_expect_pass()
{
	local pid=$1 out=$2
	pid_alive "$pid" || fail "process $pid is not running when it should be checked"
	kill -USR2 "$pid" || fail "cannot signal $pid"
	wait_line "$out" '^(PASS|FAIL.*)$' "$PASS_TIMEOUT" ||
		fail "process $pid did not answer SIGUSR2 within $PASS_TIMEOUT s"
	grep -q '^FAIL' "$out" && fail "process $pid: $(grep -m1 '^FAIL' "$out")"
	"$WL/pidwait" "$pid" 10 >/dev/null 2>&1 || fail "process $pid still runs after PASS"
	wait "$pid" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------- ferry

# run_ferry LOGNAME ARGS...: run ferry with a time limit; its stderr goes to
# $T/LOGNAME.err (also shown). Returns ferry's exit status.
run_ferry()
{
	local name=$1 rc
	shift
	# (the shell's own stderr is muted meanwhile: it would report the target,
	# a background job, as "Killed" when the dump ends it)
	{ timeout --foreground -k 5 "$FERRY_TIMEOUT" "$FERRY" "$@" 2>"$T/$name.err"; } 2>/dev/null
	rc=$?
	[ "$rc" = 124 ] && echo "ferry $1 timed out after $FERRY_TIMEOUT s" >>"$T/$name.err"
	return "$rc"
}

# ferry_dump PID DIR [OPTIONS...]: dump must succeed; without --leave-running
# the target must be gone afterwards. Logs to $T/dump.N.log.
ferry_dump()
{
	local pid=$1 dir=$2 rc leave=0 opt
	shift 2
	for opt in "$@"; do [ "$opt" = --leave-running ] && leave=1; done
	_SEQ=$((_SEQ + 1))
	run_ferry "dump.$_SEQ" dump -t "$pid" -D "$dir" -v4 -o "$T/dump.$_SEQ.log" "$@"
	rc=$?
	[ "$rc" = 0 ] || fail "ferry dump -t $pid failed (exit $rc): $(tail -n 3 "$T/dump.$_SEQ.err")"
	[ -f "$dir/inventory.img" ] || fail "ferry dump -t $pid succeeded but $dir has no inventory.img"
	if [ "$leave" = 1 ]; then
		pid_alive "$pid" || fail "target $pid is gone after dump --leave-running"
	else
		"$WL/pidwait" "$pid" 10 >/dev/null 2>&1 || fail "target $pid still runs after dump"
		wait "$pid" 2>/dev/null
	fi
	return 0
}

# ferry_restore DIR [OPTIONS...]: restore -d must succeed and write a pid file.
# Sets RESTORED_PID (as seen here) and tracks it.
ferry_restore()
{
	local dir=$1 rc
	shift
	_SEQ=$((_SEQ + 1))
	local pidfile=$T/restore.$_SEQ.pid
	run_ferry "restore.$_SEQ" restore -D "$dir" -d --pidfile "$pidfile" \
		-v4 -o "$T/restore.$_SEQ.log" "$@"
	rc=$?
	[ "$rc" = 0 ] || fail "ferry restore -D $dir failed (exit $rc): $(tail -n 3 "$T/restore.$_SEQ.err")"
	[ -s "$pidfile" ] || fail "ferry restore -d did not write the pid file"
	RESTORED_PID=$(tr -d '[:space:]' <"$pidfile")
	[[ $RESTORED_PID =~ ^[0-9]+$ ]] || fail "pid file holds '$RESTORED_PID', not a pid"
	track_pid "$RESTORED_PID"
	pid_alive "$RESTORED_PID" || fail "restored process $RESTORED_PID is not running"
	return 0
}

# dump_restore_check NAME ARGS...: the basic cycle of every workload:
# start, ready, dump (target killed), restore -d with the same pid, PASS.
dump_restore_check()
{
	wl_start "$@"
	wl_wait_ready
	local pid=$WL_PID
	ferry_dump "$pid" "$T/img"
	ferry_restore "$T/img"
	[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
	wl_expect_pass "$RESTORED_PID" "$WL_OUT"
}

# interp_loop_check NAME CMD ARGS...: an interpreter running a script that
# appends to $T/NAME.out (given as its last argument) "# expected SUM", then
# `ready`, then "# iter I SUM" every few ms, SUM being the checksum of its data,
# is dumped and restored with the same pid, and goes on: its iteration count
# continues where it stopped and every SUM is the expected one.
interp_loop_check()
{
	local name=$1 pid out last expected bad
	shift
	out=$T/$name.out
	bg_start "$name" "$@" "$out"
	pid=$BG_PID
	wl_wait_ready "$pid" "$out"
	wait_line "$out" '^# iter 5 ' || fail "$name did not reach iteration 5"

	ferry_dump "$pid" "$T/img"
	last=$(sed -n 's/^# iter \([0-9]*\) .*/\1/p' "$out" | tail -n 1)
	ferry_restore "$T/img"
	[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"

	wait_line "$out" "^# iter $((last + 1)) " || fail "no iteration $((last + 1)) after restore (last: $last)"
	wait_line "$out" "^# iter $((last + 5)) " || fail "no iteration $((last + 5)) after restore"
	expected=$(sed -n 's/^# expected //p' "$out")
	bad=$(awk -v e="$expected" '$2 == "iter" && $4 != e' "$out" | head -n 3)
	[ -z "$bad" ] || fail "checksum differs from $expected: $bad"
	pid_alive "$pid" || fail "$name exited after restore"
	say "$name went on from iteration $last to $(sed -n 's/^# iter \([0-9]*\) .*/\1/p' "$out" | tail -n 1), checksum $expected"
}

# expect_fail_cmd PATTERN CMD ARGS...: CMD must fail cleanly: an exit status
# from 1 to 123 (not a crash, not a time-out) and exactly one line on stderr
# that matches PATTERN (an extended regex, case-insensitive; a plain substring
# works as such). Leaves that line in EXPECT_ERR.
expect_fail_cmd()
{
	local pattern=$1 rc lines
	shift
	_SEQ=$((_SEQ + 1))
	local err=$T/expect.$_SEQ.err
	timeout --foreground -k 5 "$FERRY_TIMEOUT" "$@" >"$T/expect.$_SEQ.stdout" 2>"$err" </dev/null
	rc=$?
	EXPECT_ERR=$(cat "$err")
	[ "$rc" = 0 ] && fail "'$*' succeeded; expected a failure matching '$pattern'"
	[ "$rc" = 124 ] && fail "'$*' timed out after $FERRY_TIMEOUT s"
	[ "$rc" -ge 124 ] && fail "'$*' died with exit status $rc (crash?); stderr: $EXPECT_ERR"
	lines=$(grep -c . "$err")
	[ "$lines" = 1 ] || fail "'$*' printed $lines lines on stderr, expected one: $EXPECT_ERR"
	grep -qiE -- "$pattern" "$err" ||
		fail "'$*' error does not match '$pattern': $EXPECT_ERR"
	say "refused as expected (exit $rc): $EXPECT_ERR"
	return 0
}

# ---------------------------------------------------------------- leftovers

# Pids of processes whose cwd or an open fd is inside T.
procs_using_T()
{
	find /proc/[0-9]*/cwd /proc/[0-9]*/fd -maxdepth 1 \
		\( -lname "$T" -o -lname "$T/*" \) 2>/dev/null | cut -d/ -f3 | sort -u
}

# assert_nothing_left [PID...]: no process but the given ones (and this shell)
# holds anything in T: nothing half-restored, no ferry helper left behind.
assert_nothing_left()
{
	local pid ok bad=""
	for pid in $(procs_using_T); do
		[ "$pid" = $$ ] && continue
		pid_alive "$pid" || continue
		ok=0
		for allowed in "$@"; do [ "$pid" = "$allowed" ] && ok=1; done
		[ "$ok" = 1 ] && continue
		track_pid "$pid"
		bad="$bad $pid($(cat "/proc/$pid/comm" 2>/dev/null))"
	done
	[ -z "$bad" ] || fail "processes left behind that use the test's files:$bad"
	return 0
}

# assert_not_running PID WHAT: PID must not exist (it would be a restored copy).
assert_not_running()
{
	if pid_alive "$1"; then
		track_pid "$1"
		fail "$2: process $1 exists"
	fi
	return 0
}

# proc_snapshot PID: what a refused dump must leave exactly as it was.
proc_snapshot()
{
	local pid=$1
	echo "== maps"
	cat "/proc/$pid/maps"
	echo "== fds"
	ls -l "/proc/$pid/fd" 2>/dev/null | awk 'NR > 1 { print $(NF-2), $(NF-1), $NF }'
	echo "== status"
	grep -E '^(State|TracerPid|SigBlk|SigIgn|SigCgt|SigPnd|ShdPnd|Threads|Seccomp|NoNewPrivs|Uid|Gid):' \
		"/proc/$pid/status"
}

# ---------------------------------------------------------------- counter

# The number of the last tick the counter workload wrote ("# tick N").
counter_last_tick()
{
	sed -n 's/^# tick \([0-9][0-9]*\).*/\1/p' "$1" | tail -n 1
}

# counter_wait_tick OUT N: wait until tick N is written.
counter_wait_tick()
{
	wait_line "$1" "^# tick $2( |\$)" "${3:-$PASS_TIMEOUT}"
}

# ---------------------------------------------------------------- bad input

# flip_byte FILE OFFSET: invert every bit of one byte in place.
flip_byte()
{
	"$PY" - "$1" "$2" <<'PYEOF' || fail "cannot flip byte $2 of $1"
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    if len(b) != 1:
        sys.exit("offset beyond the end of the file")
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xFF]))
PYEOF
}

# put_u32le FILE OFFSET VALUE: overwrite a little-endian 32-bit field in place.
put_u32le()
{
	"$PY" - "$1" "$2" "$3" <<'PYEOF' || fail "cannot write $3 at $2 of $1"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    f.write(struct.pack("<I", int(sys.argv[3])))
PYEOF
}

file_size()
{
	stat -c %s "$1"
}

# bad_image_setup: dump a mem workload to $T/img (IMG_PID is its pid) and keep
# an intact copy in $T/img.orig, the control that the image was good before
# the test spoiled it.
bad_image_setup()
{
	wl_start mem
	wl_wait_ready
	IMG_PID=$WL_PID
	ferry_dump "$IMG_PID" "$T/img"
	cp -a "$T/img" "$T/img.orig" || fail "cannot copy the image"
}

# image_file NAME: IMG_FILE is the path of image file NAME in $T/img, which must exist.
image_file()
{
	IMG_FILE=$T/img/$1
	[ -f "$IMG_FILE" ] || fail "the dump wrote no $1 (has: $(ls "$T/img" | tr '\n' ' '))"
	return 0
}

# bad_image_check PATTERN: restoring the spoiled $T/img must fail with one line
# matching PATTERN and create nothing; the intact copy must then restore and PASS.
bad_image_check()
{
	expect_fail_cmd "$1" "$FERRY" restore -D "$T/img" -d --pidfile "$T/bad.pid"
	assert_not_running "$IMG_PID" "after the refused restore"
	[ -e "$T/bad.pid" ] && fail "the refused restore wrote a pid file"
	assert_nothing_left
	ferry_restore "$T/img.orig"
	[ "$RESTORED_PID" = "$IMG_PID" ] || fail "control: restored with pid $RESTORED_PID, dumped $IMG_PID"
	wl_expect_pass "$RESTORED_PID" "$WL_OUT"
}

# ---------------------------------------------------------------- refused targets

# wait_state PID LETTERS: wait (up to 10 s) until PID's state is one of LETTERS.
# /proc offers no event for this, so it polls.
wait_state()
{
	for _ in $(seq 1 200); do
		[[ $(proc_status_field "$1" State) == ["$2"]* ]] && return 0
		sleep 0.05
	done
	return 1
}

# refused_dump_check PATTERN [ALLOWED_PID...]: dumping WL_PID must fail with one
# line matching PATTERN; the target and its children are left exactly as they
# were, no image is presented as complete, and nothing else is left behind.
refused_dump_check()
{
	local pattern=$1 pid=$WL_PID before
	shift
	before=$(proc_snapshot "$pid")
	local start
	start=$(proc_starttime "$pid")
	expect_fail_cmd "$pattern" "$FERRY" dump -t "$pid" -D "$T/img"
	[ -e "$T/img/inventory.img" ] && fail "the refused dump left $T/img/inventory.img"
	[ "$(proc_starttime "$pid")" = "$start" ] || fail "target $pid is gone after the refused dump"
	local after
	after=$(proc_snapshot "$pid")
	[ "$before" = "$after" ] ||
		fail "target $pid changed: $(diff <(echo "$before") <(echo "$after") | head -n 10 | tr '\n' ' ')"
	assert_nothing_left "$pid" $(pgrep -P "$pid") "$@"
}

# refuse_check MODE PATTERN: the refuse workload in MODE holds a resource ferry
# does not handle yet; dump refuses naming it, and the workload still PASSes.
refuse_check()
{
	wl_start refuse "$1"
	wl_wait_ready
	refused_dump_check "$2"
	wl_expect_pass "$WL_PID" "$WL_OUT"
}

# ---------------------------------------------------------------- two hosts

# two_hosts TAG SUBNET: network namespaces NS_SRC (SUBNET.1) and NS_DST
# (SUBNET.2), e.g. SUBNET=10.199.7, joined by a veth pair; removed by
# two_hosts_remove, and when the test exits (its exit status kept). Skips if
# namespaces cannot be made.
two_hosts_remove()
{
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
}

two_hosts()
{
	local tag=$1 net=$2
	command -v ip >/dev/null || skip "no ip command (iproute2)"
	NS_SRC=ferry-$tag-src-$$
	NS_DST=ferry-$tag-dst-$$
	trap 'rc=$?; two_hosts_remove; (exit $rc); cleanup' EXIT
	ip netns add "$NS_SRC" || skip "cannot create network namespaces"
	ip netns add "$NS_DST" || fail "cannot create a second network namespace"
	ip link add "${tag}s$$" netns "$NS_SRC" type veth peer name "${tag}d$$" netns "$NS_DST" ||
		fail "cannot create the veth pair"
	ip -n "$NS_SRC" addr add "$net.1/24" dev "${tag}s$$" &&
		ip -n "$NS_SRC" link set "${tag}s$$" up && ip -n "$NS_SRC" link set lo up ||
		fail "cannot configure $NS_SRC"
	ip -n "$NS_DST" addr add "$net.2/24" dev "${tag}d$$" &&
		ip -n "$NS_DST" link set "${tag}d$$" up && ip -n "$NS_DST" link set lo up ||
		fail "cannot configure $NS_DST"
}
