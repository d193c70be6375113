#!/bin/bash
# Handlers, masks, pending signals and sigaltstack survive dump and restore.
. "$(dirname "$0")/../lib.sh"

dump_restore_check signals
