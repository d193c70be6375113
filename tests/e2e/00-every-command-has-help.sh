#!/bin/bash
# ferry --help and every command's --help print a usage and exit 0.
. "$(dirname "$0")/../lib.sh"

"$FERRY" --help >"$T/help.log" 2>&1 || fail "ferry --help exited $?"
for cmd in dump restore show run check; do
	grep -qw "$cmd" "$T/help.log" || fail "ferry --help does not list $cmd"
	"$FERRY" "$cmd" --help >"$T/help-$cmd.log" 2>"$T/help-$cmd.err.log" ||
		fail "ferry $cmd --help exited $?"
	grep -qi usage "$T/help-$cmd.log" ||
		fail "ferry $cmd --help prints no usage: $(head -n 3 "$T/help-$cmd.log")"
	grep -qw "$cmd" "$T/help-$cmd.log" || fail "ferry $cmd --help does not name the command"
done
