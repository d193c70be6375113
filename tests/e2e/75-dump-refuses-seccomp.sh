#!/bin/bash
# A target holding a seccomp filter is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check seccomp 'seccomp'
