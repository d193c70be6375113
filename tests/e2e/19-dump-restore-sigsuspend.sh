#!/bin/bash
# A process in sigsuspend with a temporary signal mask resumes it after
# restore, and its signal mask is the full one again after each return.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep suspend
