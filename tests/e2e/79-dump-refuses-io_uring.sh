#!/bin/bash
# A target holding an io_uring instance is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check io_uring 'io_uring|io-uring|uring'
