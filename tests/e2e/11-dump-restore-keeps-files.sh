#!/bin/bash
# Open files keep their paths, offsets, flags and sharing; unlinked files and pipes keep their data.
. "$(dirname "$0")/../lib.sh"

dump_restore_check files
