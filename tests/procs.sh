# Shell helpers about processes, shared by tests/lib.sh, tests/run.sh,
# tests/demo.sh and bench/lib.sh (sourced, not run).

# The start time (clock ticks since boot) of PID, or nothing if it is gone.
proc_starttime()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

# True while PID exists and is not a zombie.
pid_alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != [ZX] ]]
}

# Close every fd above 2 in this (sub)shell, before it execs a workload or a
# test: ferry refuses to dump a pipe whose other end is outside the process,
# and what the caller had open must not leak into what it starts.
close_extra_fds()
{
	local fd
	for fd in "/proc/$BASHPID/fd/"*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
	done
	return 0
}
