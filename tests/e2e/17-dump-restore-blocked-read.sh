#!/bin/bash
# A process blocked in read() resumes the read after restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check sleep read
