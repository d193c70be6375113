#!/bin/bash
# A page server whose disk fills up in the middle of a session (a write of
# the pages file fails while the client is still sending) answers
# ERROR(IO) with the reason, drops that session whole (nothing visible, its
# work directory gone) and serves the next session. The server's directory is
# a 2 MiB tmpfs; the failing session sends 4 MiB.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

"$FERRY" page-server --help >/dev/null 2>&1 || skip "ferry has no page-server command"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"

mkdir -p "$T/small"
mount -t tmpfs -o size=2m,mode=0700 ferry-e2e-small "$T/small" || skip "cannot mount a tmpfs"
trap 'rc=$?; _kill_tracked; umount -l "$T/small" 2>/dev/null; (exit $rc); cleanup' EXIT

cat >"$T/client.py" <<'PYEOF'
import os, socket, struct, sys

MAGIC, HELLO, HELLO_REPLY, ERROR, OK = 0x53505246, 1, 2, 5, 6
OPEN, ADD_PAGES, COMMIT, CLOSE = 16, 17, 27, 28

def msg(t, payload, ident=1, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IHHII", MAGIC, t, 0, ident, n) + payload

def s16(b):
    return struct.pack("<H", len(b)) + b

def recv_exact(s, n):
    out = b""
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c:
            raise EOFError("closed")
        out += c
    return out

def recv(s):
    magic, t, flags, ident, length = struct.unpack("<IHHII", recv_exact(s, 16))
    return t, recv_exact(s, length)

def session(port, name, mib):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(msg(HELLO, struct.pack("<HHIQ", 1, 1, 0, 0) + os.urandom(32)))
    assert recv(s)[0] == HELLO_REPLY
    s.sendall(msg(OPEN, struct.pack("<II", 4242, 0) + s16(b"") + s16(b"") + s16(name) + s16(b""), 2))
    t, p = recv(s)
    assert t == OK, p
    addr, pages = 0x10000, mib * 256
    try:
        for i in range(0, pages, 256):
            s.sendall(msg(ADD_PAGES, struct.pack("<QQ", addr + i * 4096, 256), 3,
                          16 + 256 * 4096) + bytes([i % 251 + 1]) * (256 * 4096))
        s.sendall(msg(COMMIT, struct.pack("<QQ", pages, pages // 256), 4))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server gave up on us: its ERROR is what counts
    t, p = recv(s)
    if t == OK:
        s.sendall(msg(CLOSE, struct.pack("<I", 0), 5))
        recv(s)
        return "ok"
    code, n = struct.unpack("<IH", p[:6])
    return "error %d: %s" % (code, p[6:6 + n].decode(errors="replace"))

print(session(int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])))
PYEOF

ps_start "$T/small/dst" ps
out=$("$PY" "$T/client.py" "$PS_PORT" big 4 2>&1) || fail "the client of the big session: $out"
say "big session: $out"
case $out in
"error 10: "*"No space left"*) ;;
*) fail "expected ERROR(IO) about the full disk, got: $out" ;;
esac
pid_alive "$PS_PID" || fail "the page server died"
left=$(ls -A "$T/small/dst")
[ -z "$left" ] || fail "the failed session left: $left"

out=$("$PY" "$T/client.py" "$PS_PORT" good 1 2>&1) || fail "the client of the good session: $out"
[ "$out" = ok ] || fail "the session after the failed one: $out"
[ -f "$T/small/dst/good/pagemap-4242.img" ] && [ -f "$T/small/dst/good/pages-4242.img" ] ||
	fail "the good session is not visible: $(ls -A "$T/small/dst" | tr '\n' ' ')"
grep -q "connection dropped" "$T/ps.log" || fail "no log line for the dropped session"

kill -TERM "$PS_PID"
"$WL/pidwait" "$PS_PID" 10 >/dev/null 2>&1 || fail "page-server did not stop on SIGTERM"
exit 0
