#!/bin/bash
# Every kind of mapping keeps its layout and contents across dump and restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check mem
