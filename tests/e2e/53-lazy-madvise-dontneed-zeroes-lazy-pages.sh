#!/bin/bash
# Post-copy, UFFD_EVENT_REMOVE: the moment the lazily restored process runs, it
# MADV_DONTNEEDs 1/16 of the region (pages still on the source). A quarter
# of that range, read back at once, must be zero (a fault there gets a zero
# page, never a fetch), and takes new writes; the other three quarters,
# untouched until the final check after every page arrived, must still be
# zero: the background transfer may not bring their old contents back.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_event_test dontneed
