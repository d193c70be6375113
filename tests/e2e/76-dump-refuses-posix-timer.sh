#!/bin/bash
# A target holding a POSIX timer is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check posix-timer 'timer'
