#!/bin/bash
# bench/lazy.sh BUILD: post-copy of a 1 GiB process on loopback, in the same
# run as the two limits its background transfer is held against:
#   tcp          a plain TCP copy of 1 GiB between two local processes (1 MiB writes)
#   first_touch  mmap of 1 GiB fresh anonymous memory and memset (bench/firsttouch.c)
#   lazy         BUILD/tests/workloads/lazyw 1024 under `ferry run`, `ferry dump
#                --lazy-pages`, then on the destination the one command `ferry
#                restore --lazy-pages --page-server -d` (it starts the daemon
#                itself; LAZY_TWO_COMMANDS=1 runs `ferry lazy-pages -d` first
#                instead); the restored process at once reads one byte of 4000
#                random pages (4 KiB faults while the background transfer runs).
#                The destination command is started before the dump with
#                --wait-images, as a migration would (QEMU's -incoming): it
#                restores the moment the images are complete, so starting ferry
#                is not part of the downtime. LAZY_DEST=after starts it only
#                once the dump serves (then the downtime includes exec'ing it
#                from this shell: ~8 ms here).
# Figures (medians of RUNS rounds, default 3), one JSON object per line:
#   downtime_ms        the dump's log: "pid N frozen" to "the destination runs
#                      (committed)" (one clock: the dump's; the commit is sent
#                      once the restored process runs)
#   dump_to_serving_ms the dump's part of it: "frozen" to "serving its lazy pages"
#   downtime_seen_ms   the workload's own view: the largest jump of CLOCK_REALTIME
#                      between two of its 200 us heartbeats ("# gap N us")
#   restore_ms         `ferry restore`'s "restored in X ms"
#   fault_p50_us, fault_p99_us, fault_max_us   lazy-stats.json (the daemon's view)
#   touch_p50_us, touch_p99_us   the workload's view of the same faults
#   transfer_ms        the daemon's log (the restore's, with one command): "the
#                      process runs" to "all pages arrived"
#   background         1 GiB / transfer_ms, GB/s, against min(tcp, first_touch)
# Targets (issue 5): downtime < 30 ms; fault p50 < 30 us, p99 < 300 us;
# background >= 0.8 x the smaller limit. Progress and failures on stderr.
# Root only (ptrace, namespaces); kills only its own processes, removes its
# temporary directory on exit.
set -u
RUNS=${RUNS:-3}
MIB=1024
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init lazy.sh "$@"
positive RUNS
WL=$BUILD/tests/workloads
[ -x "$WL/lazyw" ] || die "$WL/lazyw is not built"
"$FERRY" dump --help | grep -q -- --lazy-pages || die "ferry dump has no --lazy-pages"
PY=/usr/bin/python3
[ -x "$PY" ] || die "needs /usr/bin/python3"

bench_workdir ferry-bench-lazy
compile "$WORK" firsttouch

# logtime FILE REGEX: the (seconds) timestamp of the first line of a ferry log matching REGEX.
logtime() { sed -n "/$2/{s/^(\([0-9.]*\)).*/\1/p;q}" "$1"; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# one_lazy DIR: one post-copy run; writes DIR/figures ("name value" lines).
one_lazy()
{
	local d=$1 pid dump lazy= r port rc
	mkdir -p "$d"
	(cd "$d" && exec "$FERRY" run --pidfile "$d/run.pid" -- "$WL/lazyw" "$d/w.out" "$MIB" touch hb) \
		</dev/null >"$d/run.log" 2>&1 || { log "ferry run failed: $(tail -n 2 "$d/run.log")"; return 1; }
	pid=$(cat "$d/run.pid")
	track "$pid"
	track "$(awk '{ print $4 }' "/proc/$pid/stat")"
	"$WL/waitfor" "$d/w.out" '^ready$' 60 >/dev/null || { log "lazyw not ready"; return 1; }
	port=$(free_port)
	local rargs=(--page-server --address 127.0.0.1 --port "$port") dlog=$d/restore.log rest=
	if [ "${LAZY_DEST:-prestart}" = prestart ] && [ "${LAZY_TWO_COMMANDS:-0}" != 1 ]; then
		"$FERRY" restore -D "$d/img" --lazy-pages "${rargs[@]}" --wait-images 60 -d \
			--pidfile "$d/restore.pid" -v4 -o "$d/restore.log" </dev/null >/dev/null \
			2>"$d/restore.err" &
		rest=$!
		track "$rest"
	fi
	"$FERRY" dump -t "$pid" -D "$d/img" --lazy-pages --address 127.0.0.1 --port "$port" -v4 \
		-o "$d/dump.log" </dev/null >/dev/null 2>"$d/dump.err" &
	dump=$!
	track "$dump"
	if [ -n "$rest" ]; then
		wait "$rest"
		rc=$?
	else
		# the restore follows at once (the downtime runs): whether the dump served
		# or failed is looked at after it
		"$WL/waitfor" "$d/dump.log" 'serving its lazy pages|error: ' 60 >/dev/null ||
			{ log "ferry dump -t $pid -D $d/img --lazy-pages --port $port: $(tail -n 2 "$d/dump.err")"; return 1; }
		if [ "${LAZY_TWO_COMMANDS:-0}" = 1 ]; then
			"$FERRY" lazy-pages -D "$d/img" --page-server --address 127.0.0.1 --port "$port" -d \
				--pidfile "$d/lazy.pid" -v4 -o "$d/lazy.log" </dev/null >/dev/null 2>"$d/lazy.err" ||
				{ log "ferry lazy-pages failed: $(tail -n 2 "$d/lazy.err")"; return 1; }
			rargs=() dlog=$d/lazy.log lazy=$(cat "$d/lazy.pid")
		fi
		"$FERRY" restore -D "$d/img" --lazy-pages "${rargs[@]}" -d --pidfile "$d/restore.pid" -v4 \
			-o "$d/restore.log" </dev/null >/dev/null 2>"$d/restore.err"
		rc=$?
	fi
	grep -q 'serving its lazy pages' "$d/dump.log" ||
		{ log "ferry dump -t $pid -D $d/img --lazy-pages --port $port: $(tail -n 2 "$d/dump.err")"; return 1; }
	[ "$rc" = 0 ] || { log "ferry restore -D $d/img --lazy-pages failed: $(tail -n 2 "$d/restore.err")"; return 1; }
	r=$(cat "$d/restore.pid")
	track "$r"
	# with one command, the daemon is the restore's child left running
	[ -n "$lazy" ] || lazy=$(pgrep -f -- "restore -D $d/img --lazy-pages --page-server" | head -n 1)
	[ -n "$lazy" ] || { log "no lazy-pages daemon runs after the restore"; return 1; }
	track "$lazy"
	ln -sf "$dlog" "$d/daemon.log"
	kill -USR1 "$r"
	"$WL/pidwait" "$lazy" 120 >/dev/null || { log "the daemon did not finish in 120 s"; return 1; }
	wait "$dump"
	rc=$?
	[ "$rc" = 0 ] || { log "ferry dump exited $rc: $(tail -n 2 "$d/dump.err")"; return 1; }
	"$WL/waitfor" "$d/w.out" '^# step touch done' 60 >/dev/null || { log "the touch step did not finish"; return 1; }
	kill -USR2 "$r"
	"$WL/waitfor" "$d/w.out" '^(PASS|FAIL.*)$' 60 >/dev/null && grep -q '^PASS' "$d/w.out" ||
		{ log "the restored process did not PASS: $(grep -m1 '^FAIL' "$d/w.out")"; return 1; }
	"$PY" - "$d" "$MIB" <<'PYEOF' >"$d/figures" || return 1
import json, re, sys
d, mib = sys.argv[1], int(sys.argv[2])
def t(f, pat):
    for line in open(f"{d}/{f}"):
        if re.search(pat, line):
            return float(line[1:line.index(")")])
    sys.exit(f"no line /{pat}/ in {f}")
st = json.load(open(f"{d}/img/lazy-stats.json"))
out = open(f"{d}/w.out").read()
gaps = [int(g) for g in re.findall(r"^# gap (\d+) us$", out, re.M)]
touch = re.search(r"^# touch: (\d+) faults p50 ([\d.]+) us p99 ([\d.]+) us", out, re.M)
restore = re.search(r"restored in ([\d.]+) ms", open(f"{d}/restore.log").read())
transfer = (t("daemon.log", "all pages arrived") - t("daemon.log", "the process runs")) * 1e3
fig = {
    "downtime_ms": (t("dump.log", r"committed\)") - t("dump.log", r"frozen$")) * 1e3,
    "dump_to_serving_ms": (t("dump.log", "serving its lazy pages") - t("dump.log", r"frozen$")) * 1e3,
    "downtime_seen_ms": max(gaps) / 1e3 if gaps else -1,
    "restore_ms": float(restore.group(1)) if restore else -1,
    "fault_p50_us": st["fault_p50_us"], "fault_p99_us": st["fault_p99_us"],
    "fault_max_us": st["fault_max_us"],
    "touch_faults": int(touch.group(1)) if touch else 0,
    "touch_p50_us": float(touch.group(2)) if touch else -1,
    "touch_p99_us": float(touch.group(3)) if touch else -1,
    "pages_on_fault": st["pages_on_fault"], "pages_background": st["pages_background"],
    "transfer_ms": transfer,
    "background": (mib << 20) / (transfer * 1e6),
}
for k, v in fig.items():
    print(k, v)
PYEOF
	for p in "$r" "$lazy" "$dump"; do "$WL/pidwait" "$p" 10 >/dev/null; done
}

for run in $(seq 1 "$RUNS"); do
	ns=$(tcp_limit)
	[ "${ns:--1}" -gt 0 ] && echo "tcp $(gbps "$ns")" >>"$WORK/limits.$run"
	read -r bytes ns < <("$WORK/firsttouch" anon "$MIB")
	[ "${ns:-0}" -gt 0 ] && echo "first_touch $(gbps "$ns")" >>"$WORK/limits.$run"
	log "round $run: limits $(tr '\n' ' ' <"$WORK/limits.$run")"
	if one_lazy "$WORK/run$run"; then
		log "round $run: $(tr '\n' ' ' <"$WORK/run$run/figures")"
	else
		FAILED=1
		log "round $run: the lazy migration failed (files kept in $WORK/run$run with KEEP=1)"
	fi
	rm -rf "$WORK/run$run/img"
done

"$PY" - "$WORK" "$RUNS" "$MIB" <<'PYEOF'
import glob, json, os, statistics, sys
work, runs, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            k, v = line.split()
            d[k] = float(v)
    return d
limits = [load(f"{work}/limits.{i}") for i in range(1, runs + 1)]
figs = [load(f"{work}/run{i}/figures") for i in range(1, runs + 1)]
def samples(rows, k):
    return [r[k] for r in rows if k in r]
def med(xs):
    return round(statistics.median(xs), 3) if xs else None
what = {
    "tcp": "plain TCP copy of 1 GiB over loopback, 1 MiB writes (python)",
    "first_touch": "mmap + memset of 1 GiB fresh anonymous memory",
    "downtime_ms": "dump log: 'frozen' to 'the destination runs (committed)'; destination "
                   + ("started before the dump (--wait-images)" if os.environ.get("LAZY_DEST", "prestart") == "prestart"
                      and os.environ.get("LAZY_TWO_COMMANDS", "0") != "1" else "started once the dump serves"),
    "dump_to_serving_ms": "dump log: 'frozen' to 'serving its lazy pages' (the rest of the downtime is starting the daemon and the restore)",
    "downtime_seen_ms": "largest CLOCK_REALTIME jump between two 200 us heartbeats of the workload",
    "restore_ms": "ferry restore's 'restored in X ms'",
    "fault_p50_us": "lazy-stats.json fault_p50_us (4 KiB faults during background transfer)",
    "fault_p99_us": "lazy-stats.json fault_p99_us",
    "fault_max_us": "lazy-stats.json fault_max_us",
    "touch_p50_us": "the workload's own first-touch time of pages not yet present, p50",
    "touch_p99_us": "the workload's own first-touch time of pages not yet present, p99",
    "transfer_ms": "daemon log (the restore's with one command): 'the process runs' to 'all pages arrived'",
    "background": "1 GiB / transfer_ms",
}
units = {"tcp": "GB/s", "first_touch": "GB/s", "background": "GB/s"}
targets = {"downtime_ms": ("< 30 ms", lambda v: v < 30), "downtime_seen_ms": ("< 30 ms", lambda v: v < 30),
           "fault_p50_us": ("< 30 us", lambda v: v < 30), "fault_p99_us": ("< 300 us", lambda v: v < 300),
           "touch_p50_us": ("< 30 us", lambda v: v < 30), "touch_p99_us": ("< 300 us", lambda v: v < 300)}
for k in ("tcp", "first_touch"):
    s = samples(limits, k)
    print(json.dumps({"bench": "lazy", "metric": "limit_" + k, "value": med(s), "unit": "GB/s",
                      "runs": len(s), "samples": s, "what": what[k]}))
lim = min(x for x in (med(samples(limits, "tcp")), med(samples(limits, "first_touch"))) if x) \
    if samples(limits, "tcp") or samples(limits, "first_touch") else None
for k in what:
    if k in ("tcp", "first_touch"):
        continue
    s = [round(x, 3) for x in samples(figs, k)]
    o = {"bench": "lazy", "size_mib": mib, "metric": k, "value": med(s),
         "unit": units.get(k, "ms" if k.endswith("_ms") else "us"), "runs": len(s), "samples": s,
         "what": what[k]}
    if k in targets and s:
        o["target"], o["target_met"] = targets[k][0], targets[k][1](med(s))
    if k == "background" and s and lim:
        o["limit"] = "min(tcp, first_touch)"
        o["limit_value"] = lim
        o["ratio_to_limit"] = round(med(s) / lim, 3)
        per = [f["background"] / min(l.get("tcp", 1e9), l.get("first_touch", 1e9))
               for f, l in zip(figs, limits) if "background" in f]
        o["ratio_per_round_median"] = med(per)
        o["target"], o["target_met"] = ">= 0.8 x min(tcp, first_touch)", med(s) / lim >= 0.8
    print(json.dumps(o))
PYEOF
exit "$FAILED"
