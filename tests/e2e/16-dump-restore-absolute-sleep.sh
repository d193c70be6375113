#!/bin/bash
# A process blocked in an absolute (TIMER_ABSTIME) sleep resumes it after restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep abs
