#!/bin/bash
# General and vector registers hold their values across dump and restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check regs
