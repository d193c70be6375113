#!/bin/bash
# tests/run.sh BUILD ASAN_BUILD [PATTERN]
#
# Runs every test of ferry and prints one line per test:
#   PASS name | FAIL name (then the last 30 lines of its output, indented) | SKIP name: reason
# and at the end exactly one line "N passed, N failed, N skipped". Exits 1 if
# anything failed.
#
# 1. The unit tests (meson suite "unit") of BUILD, then of ASAN_BUILD (ASan+UBSan);
#    each unit test counts once per build.
# 2. Every tests/e2e/*.sh in order, with FERRY=BUILD/ferry, WL=BUILD/tests/workloads
#    and T a fresh temporary directory (removed afterwards), each under a time
#    limit of E2E_TIMEOUT seconds (180): a test still running then is killed
#    with its process group and counts as failed.
#
# With PATTERN (an extended regex), only the e2e tests whose name matches run,
# and no unit tests: for working on one behaviour.

set -u

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: tests/run.sh BUILD ASAN_BUILD [PATTERN]" >&2
	exit 2
fi

abspath()
{
	case $1 in
	/*) echo "$1" ;;
	*) echo "$PWD/$1" ;;
	esac
}

BUILD=$(abspath "$1")
ASAN_BUILD=$(abspath "$2")
PATTERN=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/procs.sh
. "$ROOT/tests/procs.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-180}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}

passed=0
failed=0
skipped=0
current_group=""
current_T=""

pass_line()
{
	echo "PASS $1"
	passed=$((passed + 1))
}

skip_line()
{
	echo "SKIP $1: $2"
	skipped=$((skipped + 1))
}

# fail_line NAME OUTPUT_FILE: FAIL and the tail of the output, indented.
fail_line()
{
	echo "FAIL $1"
	if [ -s "$2" ]; then
		tail -n 30 "$2" | sed 's/^/    /'
	fi
	failed=$((failed + 1))
}

# Kill what a killed test had started and could not clean up itself: the
# processes listed in $T/.pids as "pid:starttime", while still the same ones.
kill_leftovers()
{
	local T=$1 pid start
	[ -f "$T/.pids" ] || return 0
	while IFS=: read -r pid start; do
		[ -n "$pid" ] || continue
		local now
		now=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $20 }')
		[ "$now" = "$start" ] && kill -KILL "$pid" 2>/dev/null
	done <"$T/.pids"
	return 0
}

on_signal()
{
	# the running test is its own process group (timeout made it so)
	[ -n "$current_group" ] && kill -TERM -- "-$current_group" 2>/dev/null
	[ -n "$current_group" ] && wait "$current_group" 2>/dev/null
	[ -n "$current_T" ] && kill_leftovers "$current_T" && rm -rf "$current_T"
	echo "interrupted"
	exit 130
}
trap on_signal INT TERM HUP

# ---------------------------------------------------------------- unit tests

# run_unit BUILD LABEL: run meson's "unit" suite there and report each test.
run_unit()
{
	local build=$1 label=$2 out log rc
	if [ ! -f "$build/build.ninja" ]; then
		skip_line "$label" "$build is not a configured meson build directory"
		return
	fi
	out=$(mktemp)
	log=$build/meson-logs/ferry-unit.json
	rm -f "$log"
	timeout -k 10 "$UNIT_TIMEOUT" meson test -C "$build" --suite unit --logbase ferry-unit \
		--print-errorlogs >"$out" 2>&1 </dev/null
	rc=$?
	if [ ! -f "$log" ]; then
		if grep -qiE 'no (tests defined|suite names match)' "$out"; then
			skip_line "$label" "no unit tests defined"
		else
			fail_line "$label (meson test exit $rc, no results)" "$out"
		fi
		rm -f "$out"
		return
	fi
	# one line per test, "RESULT<tab>NAME<tab>FILE", FILE holding its output
	local dir
	dir=$(mktemp -d)
	if ! python3 - "$log" "$dir" >"$dir/results" 2>>"$out" <<'EOF'
import json, os, sys
log, dir = sys.argv[1], sys.argv[2]
with open(log) as f:
    for i, line in enumerate(f):
        if not line.strip():
            continue
        t = json.loads(line)
        name = " ".join(str(t.get("name", "?")).split())
        path = os.path.join(dir, str(i))
        with open(path, "w") as o:
            o.write((t.get("stdout") or "") + (t.get("stderr") or ""))
        print(f"{t.get('result', '?')}\t{name}\t{path}")
EOF
	then
		fail_line "$label (cannot read $log)" "$out"
		rm -rf "$out" "$dir"
		return
	fi
	local result name file
	while IFS=$'\t' read -r result name file; do
		case $result in
		OK | EXPECTEDFAIL) pass_line "$label/$name" ;;
		SKIP) skip_line "$label/$name" "$(tail -n 1 "$file")" ;;
		*)
			echo "meson result: $result" >>"$file"
			fail_line "$label/$name" "$file"
			;;
		esac
	done <"$dir/results"
	[ -s "$dir/results" ] || skip_line "$label" "no unit tests defined"
	rm -rf "$out" "$dir"
}

# ---------------------------------------------------------------- e2e tests


# Each test runs under this small subreaper: processes the test orphans (a
# restored process whose ferry restore -d exited, a ferry run init) become its
# children and are reaped at once, so that their pids are free again right
# away (init reaps lazily on some machines, and a zombie keeps its pid in use).
# When the test is over, whatever it left behind is killed, named, and the
# test fails.
REAPER='
import ctypes, os, signal, sys

ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
test = os.fork()
if test == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda n, f: os.kill(test, n))

def children():
    me, found = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open("/proc/%s/stat" % d).read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == me and fields[0] != "Z":
                found.append((int(d), stat[stat.index("(") + 1:stat.rindex(")")]))
    return found

rc = None
while rc is None:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == test:
        rc = os.waitstatus_to_exitcode(status)
        rc = 128 - rc if rc < 0 else rc
left = []
for _ in range(50):
    kids = children()
    if not kids:
        break
    for pid, comm in kids:
        left.append("%d (%s)" % (pid, comm))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        while os.waitpid(-1, 0):
            pass
    except ChildProcessError:
        pass
if left:
    print("FAIL: processes left behind, killed: " + ", ".join(sorted(set(left))))
    if rc in (0, 77):
        rc = 1
sys.exit(rc)
'

# run_e2e FILE: run one scenario in its own temporary directory.
run_e2e()
{
	local file=$1 name rc out T
	name=$(basename "$file" .sh)
	T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e.XXXXXX")
	out=$(mktemp)
	current_T=$T
	# timeout puts itself and the test in a new process group, and on expiry
	# signals the whole group (TERM, then KILL 10 s later).
	(close_extra_fds && cd / && FERRY=$BUILD/ferry WL=$BUILD/tests/workloads T=$T \
		exec timeout -k 10 "$E2E_TIMEOUT" python3 -c "$REAPER" bash "$file") </dev/null >"$out" 2>&1 &
	current_group=$!
	wait "$current_group"
	rc=$?
	current_group=""
	case $rc in
	0) pass_line "$name" ;;
	77)
		local reason
		reason=$(sed -n 's/^SKIP: //p' "$out" | tail -n 1)
		skip_line "$name" "${reason:-no reason given}"
		;;
	124 | 137)
		echo "(killed: still running after $E2E_TIMEOUT s)" >>"$out"
		fail_line "$name" "$out"
		;;
	*)
		echo "(exit status $rc)" >>"$out"
		fail_line "$name" "$out"
		;;
	esac
	kill_leftovers "$T"
	rm -rf "$T" "$out"
	current_T=""
}

# ---------------------------------------------------------------- fuzz targets

# run_fuzz FILE: build a libFuzzer target with clang (the "// Build:" line at
# its top says how) and run it for FUZZ_SECONDS; a crash fails it.
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
run_fuzz()
{
	local f=$1 name out cmd bin dir
	name=fuzz/$(basename "$f" .c)
	if ! command -v clang >/dev/null; then
		skip_line "$name" "clang is not installed"
		return
	fi
	cmd=$(head -n 1 "$f" | sed -n 's|^// Build: ||p' | sed 's| && .*||')
	if [ -z "$cmd" ]; then
		skip_line "$name" "no // Build: line at the top"
		return
	fi
	cmd=${cmd//-Ibuild/-I$BUILD}
	cmd=${cmd//build\//$BUILD/}
	bin=$BUILD/$(basename "$f" .c)
	out=$(mktemp)
	dir=$(mktemp -d)
	if ! (cd "$ROOT" && eval "$cmd") >"$out" 2>&1; then
		fail_line "$name (build)" "$out"
	elif (cd "$dir" && timeout $((FUZZ_SECONDS + 60)) "$bin" -max_total_time="$FUZZ_SECONDS" \
		-rss_limit_mb=2048) >"$out" 2>&1; then
		pass_line "$name ($(grep -o 'Done [0-9]* runs' "$out" | head -n 1))"
	else
		fail_line "$name" "$out"
	fi
	rm -rf "$out" "$dir"
}

if [ -z "$PATTERN" ]; then
	run_unit "$BUILD" unit
	run_unit "$ASAN_BUILD" unit-asan
	for f in "$ROOT"/tests/fuzz/*.c; do
		[ -e "$f" ] && run_fuzz "$f"
	done
fi

for f in "$ROOT"/tests/e2e/*.sh; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .sh)
	if [ -n "$PATTERN" ] && ! [[ $name =~ $PATTERN ]]; then
		continue
	fi
	run_e2e "$f"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
