#!/bin/bash
# A process blocked in a relative sleep resumes it after restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep rel
