#!/bin/bash
# Post-copy on loopback. lazyw (64 MiB) runs under `ferry run`; `ferry dump
# --lazy-pages` dumps all but its private memory and serves that, keeping the
# source frozen; `ferry lazy-pages --page-server` and `ferry restore
# --lazy-pages` run it again at once (pid 2 of fresh namespaces). The restored
# process writes pages before they arrived, forks a child that reads some,
# mremaps, munmaps and MADV_DONTNEEDs parts, then reads every page: all exact.
# The daemon exits once every page arrived, the dump exits 0, the frozen
# source and its init are gone, and lazy-stats.json counts pages that came on
# a fault and pages that came in the background.
#
# This file also holds the helpers of the other lazy tests (5[3-9]-lazy-*.sh):
# sourced with LAZY_LIB=1 it defines them and returns.
. "$(dirname "$0")/../lib.sh"

IMG=$T/img
LAZY_ADDR=127.0.0.1 # where the source listens and the daemon connects
SRC_PREFIX=()       # runs the dump (e.g. ip netns exec NS)
DST_PREFIX=()       # runs the daemon and the restore

# free_port: a TCP port that nobody listens on here now.
free_port()
{
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

lazy_help_check()
{
	"$FERRY" dump --help 2>/dev/null | grep -q -- --lazy-pages || skip "ferry dump has no --lazy-pages"
	"$FERRY" lazy-pages --help >/dev/null 2>&1 || skip "ferry has no lazy-pages command"
}

# lazy_run ARGS...: lazyw OUT ARGS... under `ferry run` (so that the restored
# copy, pid 2 of other namespaces, can exist while the frozen source does).
# Sets OUT, SRC_PID and SRC_INIT; waits for ready.
lazy_run()
{
	OUT=$T/lazyw.out
	(close_extra_fds && cd "$T" && exec timeout --foreground -k 5 "$FERRY_TIMEOUT" \
		"$FERRY" run --pidfile "$T/run.pid" -- "$WL/lazyw" "$OUT" "$@") </dev/null \
		>"$T/run.log" 2>&1 || fail "ferry run failed: $(tail -n 3 "$T/run.log")"
	[ -s "$T/run.pid" ] || fail "ferry run wrote no pid file"
	SRC_PID=$(tr -d '[:space:]' <"$T/run.pid")
	track_pid "$SRC_PID"
	SRC_INIT=$(proc_ppid "$SRC_PID")
	track_pid "$SRC_INIT"
	wl_wait_ready "$SRC_PID" "$OUT"
}

# lazy_dump_start [OPTIONS...]: `ferry dump --lazy-pages` of SRC_PID into IMG
# in the background (DUMP_PID; log $T/dump.log, stderr $T/dump.err), on
# LAZY_ADDR:PORT; returns once it serves its lazy pages.
lazy_dump_start()
{
	PORT=${PORT:-$(free_port)}
	(close_extra_fds && cd "$T" && exec "${SRC_PREFIX[@]}" "$FERRY" dump -t "$SRC_PID" -D "$IMG" \
		--lazy-pages --address "$LAZY_ADDR" --port "$PORT" -v4 -o "$T/dump.log" "$@") \
		</dev/null >/dev/null 2>"$T/dump.err" &
	DUMP_PID=$!
	track_pid "$DUMP_PID"
	wait_line "$T/dump.log" 'serving its lazy pages|error: ' "$FERRY_TIMEOUT" ||
		fail "the dump does not serve its lazy pages within $FERRY_TIMEOUT s: $(tail -n 3 "$T/dump.err")"
	grep -q 'serving its lazy pages' "$T/dump.log" ||
		fail "ferry dump --lazy-pages failed: $(grep -m1 'error: ' "$T/dump.log") $(tail -n 2 "$T/dump.err")"
}

# lazy_daemon_start [OPTIONS...]: `ferry lazy-pages -D IMG -d` (with
# --page-server at LAZY_ADDR:PORT unless LAZY_LOCAL=1); sets LAZY_PID. Its
# stderr (and its guardian's) goes to $T/lazy.err.
lazy_daemon_start()
{
	local remote=(--page-server --address "$LAZY_ADDR" --port "${PORT:-}")
	[ "${LAZY_LOCAL:-0}" = 1 ] && remote=()
	{ (close_extra_fds && cd "$T" && exec timeout --foreground -k 5 "$FERRY_TIMEOUT" \
		"${DST_PREFIX[@]}" "$FERRY" lazy-pages -D "$IMG" "${remote[@]}" -d \
		--pidfile "$T/lazy.pid" -v4 -o "$T/lazy.log" "$@") </dev/null >/dev/null 2>"$T/lazy.err"; } \
		2>/dev/null || fail "ferry lazy-pages -d failed: $(tail -n 3 "$T/lazy.err")"
	[ -s "$T/lazy.pid" ] || fail "ferry lazy-pages -d wrote no pid file"
	LAZY_PID=$(tr -d '[:space:]' <"$T/lazy.pid")
	track_pid "$LAZY_PID"
	pid_alive "$LAZY_PID" || fail "the lazy-pages daemon $LAZY_PID is not running after -d"
}

# lazy_restore: `ferry restore -D IMG --lazy-pages -d` must succeed; sets
# RESTORED_PID (tracked, with its init).
lazy_restore()
{
	local rc
	{ timeout --foreground -k 5 "$FERRY_TIMEOUT" "${DST_PREFIX[@]}" "$FERRY" restore -D "$IMG" \
		--lazy-pages -d --pidfile "$T/restore.pid" -v4 -o "$T/restore.log" \
		</dev/null >/dev/null 2>"$T/restore.err"; } 2>/dev/null
	rc=$?
	[ "$rc" = 0 ] || fail "ferry restore --lazy-pages failed (exit $rc): $(tail -n 3 "$T/restore.err")"
	[ -s "$T/restore.pid" ] || fail "ferry restore -d wrote no pid file"
	RESTORED_PID=$(tr -d '[:space:]' <"$T/restore.pid")
	track_pid "$RESTORED_PID"
	pid_alive "$RESTORED_PID" || fail "restored process $RESTORED_PID is not running"
	# its init, when restored into fresh namespaces (not the test's reaper)
	RESTORED_INIT=$(proc_ppid "$RESTORED_PID")
	if [ "$(cat "/proc/$RESTORED_INIT/comm" 2>/dev/null)" = ferry-init ]; then
		track_pid "$RESTORED_INIT"
	else
		RESTORED_INIT=
	fi
}

# lazy_one_command_check: after `ferry restore --lazy-pages --page-server -d`
# (its daemon is its child left running, logging into restore.log): the
# restored process runs its steps, the daemon exits once every page arrived,
# the dump exits 0, and every page is exact.
lazy_one_command_check()
{
	RESTORED_PID=$(tr -d '[:space:]' <"$T/restore.pid")
	track_pid "$RESTORED_PID"
	RESTORED_INIT=$(proc_ppid "$RESTORED_PID")
	track_pid "$RESTORED_INIT"
	LAZY_PID=$(pgrep -f -- "restore -D $IMG --lazy-pages --page-server" | head -n 1)
	[ -n "$LAZY_PID" ] || fail "no lazy-pages daemon runs after ferry restore --page-server returned"
	track_pid "$LAZY_PID"
	grep -q 'handed over' "$T/restore.log" || fail "the restore's log does not show the handover"
	lazy_step_run
	"$WL/pidwait" "$LAZY_PID" 60 >/dev/null 2>&1 || fail "the daemon still runs 60 s after the restore"
	grep -q 'all pages arrived' "$T/restore.log" ||
		fail "the daemon exited before all pages arrived: $(grep -m1 'error: ' "$T/restore.log")"
	"$WL/pidwait" "$DUMP_PID" 30 >/dev/null 2>&1 || fail "the dump still runs after every page arrived"
	wait "$DUMP_PID" || fail "ferry dump --lazy-pages exited non-zero: $(tail -n 3 "$T/dump.err")"
	"$WL/pidwait" "$SRC_PID" 10 >/dev/null 2>&1 || fail "the frozen source $SRC_PID still exists"
	wl_expect_pass "$RESTORED_PID" "$OUT"
	say "$(grep -m1 'all pages arrived' "$T/restore.log" | sed 's/^([0-9.]*) info: //')"
}

# lazy_migrate ARGS...: lazyw ARGS... under ferry run, lazy dump, daemon,
# restore: the restored process runs, its pages still on the source.
lazy_migrate()
{
	lazy_help_check
	lazy_run "$@"
	lazy_dump_start
	lazy_daemon_start "${LAZY_DAEMON_OPTS[@]}"
	lazy_restore
}

# lazy_step_run: SIGUSR1 to the restored process, wait for its script.
lazy_step_run()
{
	kill -USR1 "$RESTORED_PID" || fail "cannot signal the restored process $RESTORED_PID"
	wait_line "$OUT" '^# script done$' 30 || {
		pid_alive "$RESTORED_PID" || fail "the restored process died during its steps"
		fail "the restored process did not finish its steps within 30 s: it waits in" \
			"$(cat "/proc/$RESTORED_PID/wchan" 2>/dev/null); the daemon is in state" \
			"$(proc_status_field "$LAZY_PID" State)"
	}
}

# not_arrived STEP: how many of the pages STEP used had not arrived yet.
not_arrived()
{
	grep -m1 "^# $1: " "$OUT" | grep -o '[0-9]* \(of [0-9]* pages \)\?had not arrived' |
		head -n 1 | cut -d' ' -f1
}

# lazy_wait_done: the daemon exits once every page arrived; then the dump
# exits 0 and the frozen source and its init are gone.
lazy_wait_done()
{
	local rc
	"$WL/pidwait" "$LAZY_PID" 60 >/dev/null 2>&1 ||
		fail "the lazy-pages daemon still runs 60 s after the restore"
	grep -q 'all pages arrived' "$T/lazy.log" ||
		fail "the daemon exited before all pages arrived: $(tail -n 2 "$T/lazy.err")"
	"$WL/pidwait" "$DUMP_PID" 30 >/dev/null 2>&1 ||
		fail "the dump still runs 30 s after the destination had every page"
	wait "$DUMP_PID"
	rc=$?
	[ "$rc" = 0 ] || fail "ferry dump --lazy-pages exited $rc: $(tail -n 3 "$T/dump.err")"
	"$WL/pidwait" "$SRC_PID" 10 >/dev/null 2>&1 || fail "the frozen source $SRC_PID still exists"
	"$WL/pidwait" "$SRC_INIT" 10 >/dev/null 2>&1 || fail "the source's init $SRC_INIT still exists"
}

# lazy_stat NAME: a field of IMG/lazy-stats.json.
lazy_stat()
{
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$IMG/lazy-stats.json" "$1" 2>/dev/null || fail "no $1 in lazy-stats.json"
}

# lazy_event_test STEP [CHECK]: a 256 MiB lazyw runs only STEP, signalled the
# moment the restore returns; CHECK (a function) runs once every page arrived;
# exact afterwards. SKIPs (after every check) if none of the pages the step
# used was still missing when it ran.
lazy_event_test()
{
	local step=$1 check=${2:-} n
	# pages come only on faults for the first seconds: the step meets missing pages
	LAZY_DAEMON_OPTS=(--prefetch-after 3000)
	lazy_migrate 256 "$step"
	lazy_step_run
	n=$(not_arrived "$step")
	[ -n "$n" ] || fail "lazyw did not say how many pages of step $step had not arrived"
	lazy_wait_done
	[ -z "$check" ] || "$check"
	wl_expect_pass "$RESTORED_PID" "$OUT"
	say "step $step: $(grep -m1 "^# $step: " "$OUT" | sed 's/^# //')"
	[ "$n" -gt 0 ] || skip "every page of step $step had arrived before it ran (not a lazy $step)"
}

LAZY_DAEMON_OPTS=()
[ "${LAZY_LIB:-0}" = 1 ] && return 0

# the background transfer waits a second: the checks below meet a live source
LAZY_DAEMON_OPTS=(--prefetch-after 1000)
lazy_migrate 64 all
[ "$(proc_status_field "$RESTORED_PID" NSpid | awk '{ print $NF }')" = 2 ] ||
	fail "the restored process is not pid 2 of its namespace"
pid_alive "$SRC_PID" || fail "the source $SRC_PID is gone while the restored process runs"
lazy_step_run
lazy_wait_done
on_fault=$(lazy_stat pages_on_fault)
background=$(lazy_stat pages_background)
[ "$on_fault" -gt 0 ] || fail "lazy-stats.json: no page arrived on a fault ($(cat "$IMG/lazy-stats.json"))"
[ "$background" -gt 0 ] || fail "lazy-stats.json: no page arrived in the background ($(cat "$IMG/lazy-stats.json"))"
"$FERRY" show --json "$IMG" | python3 -c 'import json, sys; s = json.load(sys.stdin)["lazy_stats"]; sys.exit(s["pages_on_fault"] <= 0)' ||
	fail "ferry show --json does not give the post-copy statistics"
"$FERRY" show "$IMG" | grep -q '^  post-copy .* pages on .* faults' ||
	fail "ferry show does not give the post-copy statistics"
wl_expect_pass "$RESTORED_PID" "$OUT"
[ -z "$RESTORED_INIT" ] || "$WL/pidwait" "$RESTORED_INIT" 10 >/dev/null 2>&1 || fail "the restored init still runs"
say "$on_fault pages on faults, $background in the background"
assert_nothing_left
