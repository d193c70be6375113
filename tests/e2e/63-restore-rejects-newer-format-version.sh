#!/bin/bash
# An image of a newer format version (2 in the inventory header, bytes 8-11)
# is rejected with a message about the version; no process is created.
. "$(dirname "$0")/../lib.sh"

bad_image_setup
image_file inventory.img
put_u32le "$IMG_FILE" 8 2
bad_image_check "version"
