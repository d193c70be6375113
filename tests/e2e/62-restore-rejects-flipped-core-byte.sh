#!/bin/bash
# One flipped byte inside the payload of a core image fails its checksum at
# restore; no process is created.
. "$(dirname "$0")/../lib.sh"

bad_image_setup
image_file "core-$IMG_PID.img"
size=$(file_size "$IMG_FILE")
# the payload follows the 32-byte image header
[ "$size" -gt 32 ] || fail "core-$IMG_PID.img has no payload ($size bytes)"
flip_byte "$IMG_FILE" $((32 + (size - 32) / 2))
bad_image_check "checksum|corrupt|core-$IMG_PID"
