#!/bin/bash
# A process in ppoll with a temporary signal mask resumes it after restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep ppoll
