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

interp_loop_check perl perl "$T/hash.pl"
