#!/bin/bash
# Post-copy, write faults: the moment the lazily restored process runs, it
# writes 8 bytes into the middle of 64 pages whose data is still on the
# source. Each write must land on the page's real contents (fetched on the
# write fault), never on a zero page, and no background copy may undo it
# later: the final check, after every page arrived, finds the written word
# and the rest of each page exact.
LAZY_LIB=1 . "$(dirname "$0")/52-lazy-restore-loopback-exact.sh"

lazy_event_test write
