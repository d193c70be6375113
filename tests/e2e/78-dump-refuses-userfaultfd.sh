#!/bin/bash
# A target holding a userfaultfd of its own is refused: one line naming it, a non-zero exit,
# the target left untouched and still PASSing.
. "$(dirname "$0")/../lib.sh"

refuse_check userfaultfd 'userfaultfd|uffd'
