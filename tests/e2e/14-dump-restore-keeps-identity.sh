#!/bin/bash
# cwd, umask, rlimits, credentials, comm and the like survive dump and restore.
. "$(dirname "$0")/../lib.sh"

# ident makes the directory, chdirs there, and removes it when it exits
dump_restore_check ident "$T/ident-dir"
