#!/bin/bash
# Writes into a shared memfd mapping by another process (through
# /proc/PID/map_files, so the target's dirty tracking never sees them), made
# after the pre-copy round that saved those pages, are in the restored process.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_precopy.sh"

# external_write FILE FIRST_PAGE: another process (dd) writes FILE into the
# target's memfd pages from FIRST_PAGE on, through the memfd itself.
external_write()
{
	dd if="$1" of="/proc/$pid/map_files/$m_range" bs="$PAGE" seek="$2" conv=notrunc \
		status=none 2>"$T/dd.err" || fail "cannot write the memfd of $pid: $(cat "$T/dd.err")"
}

# mem_pages PID FIRST COUNT OUT: the pages of M as the process PID sees them.
mem_pages()
{
	dd if="/proc/$1/mem" of="$4" bs="$PAGE" skip=$((m_addr / PAGE + $2)) count="$3" \
		status=none 2>"$T/dd.err" || fail "cannot read the memory of $1: $(cat "$T/dd.err")"
}

PAGE=$(getconf PAGESIZE)
dirty_start
read -r m_hex m_pages m_ext < <(sed -n 's/^# M 0x\([0-9a-f]*\) \([0-9]*\) \([0-9]*\)$/\1 \2 \3/p' "$WL_OUT")
[ -n "${m_ext:-}" ] || fail "the workload did not say where M is"
m_addr=$((16#$m_hex))
m_range=$(printf '%x-%x' "$m_addr" $((m_addr + m_pages * PAGE)))
[ -e "/proc/$pid/map_files/$m_range" ] || fail "M is not one mapping $m_range: $(grep -i memfd "/proc/$pid/maps")"
n_ext=$((m_pages - m_ext))

head -c $((n_ext * PAGE)) /dev/urandom >"$T/ext1.bin"
head -c $((n_ext / 2 * PAGE)) /dev/urandom >"$T/ext2.bin"

external_write "$T/ext1.bin" "$m_ext"
pre_dump "$T/r1"
# after the round: all external pages change, then the round after that
# saves them; then half of them change again before the final dump
external_write "$T/ext2.bin" "$m_ext"
step 1
pre_dump "$T/r2" --prev-images-dir ../r1
external_write "$T/ext1.bin" "$m_ext"
external_write "$T/ext2.bin" $((m_ext + n_ext / 2))
step 2
mem_pages "$pid" "$m_ext" "$n_ext" "$T/before.bin"
{ head -c $((n_ext / 2 * PAGE)) "$T/ext1.bin"; cat "$T/ext2.bin"; } >"$T/want.bin"
cmp -s "$T/before.bin" "$T/want.bin" || fail "the writes through map_files do not show in the target itself"

ferry_dump "$pid" "$T/final" --prev-images-dir ../r2 --track-mem
restored_as_dumped "$T/final"
mem_pages "$RESTORED_PID" "$m_ext" "$n_ext" "$T/after.bin"
if ! cmp -s "$T/after.bin" "$T/want.bin"; then
	bad=$(cmp "$T/after.bin" "$T/want.bin" 2>&1 | sed -n 's/.* byte \([0-9]*\).*/\1/p')
	fail "restored M page $(((bad - 1) / PAGE + m_ext)) differs from the other process's last write"
fi
wl_expect_pass "$RESTORED_PID" "$WL_OUT"
