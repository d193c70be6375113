#!/bin/bash
# A target holding a second thread is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check thread 'thread'
