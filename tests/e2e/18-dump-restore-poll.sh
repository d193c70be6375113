#!/bin/bash
# A process blocked in poll() with a timeout resumes it after restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep poll
