# shellcheck shell=bash
# Shared shell functions for the page-server tests (tests/e2e/7N-page-server-*),
# sourced after tests/lib.sh.
#
# The tests dump to $T/src/NAME with the memory sent to a page server whose
# directory is $T/dst, so that the server writes $T/dst/NAME; the other images
# are copied there afterwards, and $T/dst/NAME is restored.

# ps_need_dump: skip unless ferry dump can send its pages to a page server.
ps_need_dump()
{
	"$FERRY" dump --help 2>/dev/null | grep -q -- --page-server ||
		skip "ferry dump has no --page-server yet (the dump is not wired to the page-server sink)"
}

# ps_start DIR NAME [OPTIONS...]: a page server (page-server -d) for DIR on a
# free port of ADDR (default 127.0.0.1), run by CMD_PREFIX if set (e.g.
# "ip netns exec NS"). Its log is $T/NAME.log, its pid file $T/NAME.pid.
# Sets PS_PORT, PS_PID (tracked) and PS_OPTS, the options that send a dump or
# pre-dump to it.
ps_start()
{
	local dir=$1 name=$2 try
	shift 2
	for try in 1 2 3 4 5 6 7 8; do
		PS_PORT=$((20000 + RANDOM % 40000))
		# shellcheck disable=SC2086
		timeout -k 5 "$FERRY_TIMEOUT" ${CMD_PREFIX:-} "$FERRY" page-server -D "$dir" --port "$PS_PORT" \
			--address "${ADDR:-127.0.0.1}" -d --pidfile "$T/$name.pid" -v4 -o "$T/$name.log" "$@" \
			2>"$T/$name.$try.err" && break
		grep -q "in use" "$T/$name.$try.err" || fail "page-server failed: $(cat "$T/$name.$try.err")"
	done
	PS_PID=$(cat "$T/$name.pid") || fail "page-server -d wrote no pid file"
	track_pid "$PS_PID"
	pid_alive "$PS_PID" || fail "page-server $PS_PID is not running after -d"
	# shellcheck disable=SC2034 # used by the tests
	PS_OPTS=(--page-server --address "${ADDR:-127.0.0.1}" --port "$PS_PORT")
}

# ps_dump_server [OPTIONS...]: ps_need_dump, then the page server "ps" of
# $T/dst on loopback.
ps_dump_server()
{
	ps_need_dump
	ps_start "$T/dst" ps "$@"
}

# ps_copy_images NAME...: the images of $T/src/NAME that did not go through
# the server travel another way (scp in real life): copy them to $T/dst/NAME.
ps_copy_images()
{
	local name
	for name in "$@"; do
		cp -n "$T"/src/"$name"/*.img "$T/dst/$name/" || fail "cannot copy the images of $name"
	done
}

# ps_restore_check NAME: copy the other images of NAME to the server's
# directory, restore from there, and the workload of WL_OUT must PASS.
ps_restore_check()
{
	ps_copy_images "$1"
	ferry_restore "$T/dst/$1"
	wl_expect_pass "$RESTORED_PID" "$WL_OUT"
}
