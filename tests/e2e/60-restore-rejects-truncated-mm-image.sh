#!/bin/bash
# A truncated mm image is rejected with a one-line error naming it; no process
# is created.
. "$(dirname "$0")/../lib.sh"

bad_image_setup
image_file "mm-$IMG_PID.img"
truncate -s $(($(file_size "$IMG_FILE") / 2)) "$IMG_FILE" || fail "cannot truncate $IMG_FILE"
bad_image_check "mm-$IMG_PID"
