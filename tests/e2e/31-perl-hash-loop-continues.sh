#!/bin/bash
# A perl interpreter looping over a large hash with a select() sleep is dumped
# and restored, and goes on with its iteration count and the hash intact.
. "$(dirname "$0")/../lib.sh"

command -v perl >/dev/null || skip "perl is not installed"

cat >"$T/hash.pl" <<'PLEOF'
use strict;
use warnings;
use IO::Handle;

open(my $out, '>>', $ARGV[0]) or die "cannot open $ARGV[0]: $!";
$out->autoflush(1);
my %table = map { ("key$_" => ($_ * 7919) % 1000003) } 0 .. 199999;

sub checksum {
    my $c = 0;
    while (my ($k, $v) = each %table) {
        $c = ($c + $v * length($k)) % 4294967291;
    }
    return $c;
}

my $expected = checksum();
print $out "# expected $expected\n";
print $out "ready\n";
for (my $i = 1; ; $i++) {
    print $out "# iter $i " . checksum() . "\n";
    select(undef, undef, undef, 0.05);
}
PLEOF

bg_start perl perl "$T/hash.pl" "$T/perl.out"
pid=$BG_PID
out=$T/perl.out
wl_wait_ready "$pid" "$out"
wait_line "$out" '^# iter 5 ' || fail "perl did not reach iteration 5"

ferry_dump "$pid" "$T/img"
last=$(sed -n 's/^# iter \([0-9]*\) .*/\1/p' "$out" | tail -n 1)
ferry_restore "$T/img"
[ "$RESTORED_PID" = "$pid" ] || fail "restored with pid $RESTORED_PID, dumped $pid"

wait_line "$out" "^# iter $((last + 1)) " || fail "no iteration $((last + 1)) after restore (last: $last)"
wait_line "$out" "^# iter $((last + 5)) " || fail "no iteration $((last + 5)) after restore"
expected=$(sed -n 's/^# expected //p' "$out")
bad=$(awk -v e="$expected" '$2 == "iter" && $4 != e' "$out" | head -n 3)
[ -z "$bad" ] || fail "checksum differs from $expected: $bad"
pid_alive "$pid" || fail "perl exited after restore"
say "perl went on from iteration $last, checksum $expected"
