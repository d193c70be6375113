#!/bin/bash
# Post-copy, UFFD_EVENT_UNMAP: the moment the lazily restored process runs, it
# unmaps 1/16 of the region (pages still on the source) and maps fresh
# anonymous memory over the first half of that range. The fresh memory must
# read as zero, then and after every page arrived (nothing of the old
# contents may be copied into it), the rest stays unmapped, and the daemon
# must not wait for the unmapped pages: it finishes, and the dump exits 0.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_event_test munmap
