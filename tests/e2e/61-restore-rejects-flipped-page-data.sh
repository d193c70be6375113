#!/bin/bash
# One flipped byte in the page data fails its chunk's checksum at restore; no
# process is created.
. "$(dirname "$0")/../lib.sh"

bad_image_setup
image_file "pages-$IMG_PID.img"
size=$(file_size "$IMG_FILE")
# page data starts after the 4096-byte header of a pages file
[ "$size" -gt 4096 ] || fail "pages-$IMG_PID.img holds no page data ($size bytes)"
flip_byte "$IMG_FILE" $((4096 + (size - 4096) / 2))
bad_image_check "checksum|corrupt|pages-$IMG_PID"
