# shellcheck shell=bash
# Shared shell functions for the pre-copy tests (tests/e2e/42-49), sourced after
# tests/lib.sh.
#
# The target of these tests is in $pid (dirty_start sets it; a test that starts
# its target another way sets it itself), and its output file in WL_OUT.
# Rounds go to $T/NAME, and `ferry show --json` of a round to $T/NAME.json.

# What the tests ask of images and processes (see its usage text).
CHECK=$(dirname "${BASH_SOURCE[0]}")/precopy_check.py

# dirty_start [ARGS...]: start the dirty workload and wait until it is ready.
dirty_start()
{
	wl_ready dirty "$@"
	pid=$WL_PID
}

# step K: the workload performs its step K.
step()
{
	kill -USR1 "$pid" || fail "cannot signal $pid for step $1"
	wait_line "$WL_OUT" "^# step $1 done\$" || fail "step $1 not done within $PASS_TIMEOUT s"
}

# show_json DIR: ferry show --json DIR into DIR.json.
show_json()
{
	"$FERRY" show --json "$1" >"$1.json" 2>"$T/show.err" ||
		fail "ferry show --json ${1#"$T"/} failed: $(cat "$T/show.err")"
}

# pre_dump DIR [OPTIONS...]: a pre-copy round of pid must succeed and leave it running.
pre_dump()
{
	local dir=$1 rc
	shift
	_SEQ=$((_SEQ + 1))
	run_ferry "predump.$_SEQ" pre-dump -t "$pid" -D "$dir" -v4 -o "$T/predump.$_SEQ.log" "$@"
	rc=$?
	[ "$rc" = 0 ] ||
		fail "ferry pre-dump -t $pid -D ${dir#"$T"/} $* failed (exit $rc): $(tail -n 3 "$T/predump.$_SEQ.err")"
	[ -f "$dir/inventory.img" ] || fail "pre-dump succeeded but ${dir#"$T"/} has no inventory.img"
	pid_alive "$pid" || fail "target $pid is gone after pre-dump ${dir#"$T"/}"
}

# pre_dump_show DIR [OPTIONS...]: pre_dump, then show_json of the round.
pre_dump_show()
{
	pre_dump "$@"
	show_json "$1"
}

# round_check DIR STEP PARENT_STEP: the round's pages are what the model says.
round_check()
{
	local why
	why=$("$PY" "$CHECK" round "$1.json" "$WL_OUT" "$2" "$3") || fail "$why"
}

# round_field DIR FIELD, round_stat DIR FIELD: a field of the round's inventory
# or of its stats (from DIR.json).
round_field()
{
	"$PY" "$CHECK" field "$1.json" "$2" || fail "${1#"$T"/}: no $2 in the inventory"
}
round_stat()
{
	"$PY" "$CHECK" stat "$1.json" "$2" || fail "${1#"$T"/}: no $2 in the stats"
}

# restored_as_dumped DIR: restore DIR, which must give back the pid of $pid.
restored_as_dumped()
{
	ferry_restore "$1"
	[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"
}

# ---------------------------------------------------------------- keepers

# keepers_of WHEN: KEEPERS is the ferry-keepers that track pid, of which there
# must be one at least.
keepers_of()
{
	KEEPERS=$("$PY" "$CHECK" keepers "$pid")
	[ -n "$KEEPERS" ] || fail "no ferry-keeper tracks $pid $1"
}

# keepers_end WHEN KEEPER...: every KEEPER exits within 10 s.
keepers_end()
{
	local when=$1 k
	shift
	for k in "$@"; do
		"$WL/pidwait" "$k" 10 >/dev/null 2>&1 || fail "ferry-keeper $k of $pid still runs 10 s $when"
	done
}

# keepers_gone WHEN KEEPER...: keepers_end, and no ferry-keeper tracks pid any more.
keepers_gone()
{
	local left
	keepers_end "$@"
	left=$("$PY" "$CHECK" keepers "$pid")
	[ -z "$left" ] || fail "ferry-keeper $left of $pid runs on $1"
}

# ---------------------------------------------------------------- failed rounds

# round_sum DIR...: remember the checksums of the files of each round DIR.
round_sum()
{
	local dir
	for dir in "$@"; do
		(cd "$dir" && md5sum ./* >"$T/${dir##*/}.md5") || fail "cannot checksum ${dir##*/}"
	done
}

# round_intact DIR WHEN: ferry show reads round DIR, complete, and its files are
# as round_sum saw them.
round_intact()
{
	local name=${1##*/}
	"$FERRY" show --json "$1" >"$T/$name.json" 2>"$T/show.err" ||
		fail "ferry show $name fails $2: $(cat "$T/show.err")"
	[ "$("$PY" "$CHECK" field "$T/$name.json" complete)" = True ] ||
		fail "$name is not complete any more $2"
	(cd "$1" && md5sum -c --quiet "$T/$name.md5" >"$T/md5.err" 2>&1) ||
		fail "$name changed $2: $(head -n 3 "$T/md5.err")"
}

# round_not_complete DIR WHAT: the failed round DIR has no inventory.img that
# says complete.
round_not_complete()
{
	local json=$T/${1##*/}.json
	if [ -e "$1/inventory.img" ] && "$FERRY" show --json "$1" >"$json" 2>/dev/null &&
		[ "$("$PY" "$CHECK" field "$json" complete)" = True ]; then
		fail "$2 left ${1##*/} with an inventory.img that says complete"
	fi
	return 0
}
