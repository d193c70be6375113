#!/bin/bash
# A target holding an AIO context is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check aio 'aio'
