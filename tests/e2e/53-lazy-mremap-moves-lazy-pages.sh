#!/bin/bash
# Post-copy, UFFD_EVENT_REMAP: the moment the lazily restored process runs, it
# mremaps 1/16 of the region (pages still on the source) to an address far
# away. It reads the first half there at once (faults at the new address:
# the daemon must fetch them from the dump-time address); the second half
# must come in the background to the new address: the final check, after
# every page arrived, finds it exact, and the old address unmapped.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_event_test mremap
