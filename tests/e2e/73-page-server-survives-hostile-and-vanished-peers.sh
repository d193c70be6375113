#!/bin/bash
# The page server survives bad peers: a client of another protocol version,
# a peer that is not ferry, unknown commands, oversized lengths and counts,
# names that try to leave the image directory, truncated messages, a wrong
# auth key, and a client killed in the middle of its data. Each is refused
# with a clear error (to the peer and in one log line), nothing of it becomes
# visible, and a good session afterwards is served and committed.
# Needs only `ferry page-server` (a small Python client speaks the protocol).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib_pageserver.sh"

"$FERRY" page-server --help >/dev/null 2>&1 || skip "ferry has no page-server command"

cat >"$T/client.py" <<'PYEOF'
# A minimal page-server client (docs/protocol.md), for hostile experiments.
import hashlib, hmac, os, socket, struct, sys, time

MAGIC = 0x53505246
HELLO, HELLO_REPLY, AUTH, AUTH_OK, ERROR, OK = 1, 2, 3, 4, 5, 6
OPEN, ADD_PAGES, ADD_HOLE, ADD_ZERO = 16, 17, 18, 19
COMMIT, CLOSE = 27, 28

def hdr(t, length, ident=1, flags=0, magic=MAGIC):
    return struct.pack("<IHHII", magic, t, flags, ident, length)

def msg(t, payload, ident=1):
    return hdr(t, len(payload), ident) + payload

def s16(b):
    return struct.pack("<H", len(b)) + b

def open_payload(pid, dirname, parent=b"", snap=b"", psnap=b""):
    return struct.pack("<II", pid, 0) + s16(snap) + s16(psnap) + s16(dirname) + s16(parent)

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
    def send(self, b):
        self.s.sendall(b)
    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            c = self.s.recv(n - len(out))
            if not c:
                raise EOFError("closed")
            out += c
        return out
    def recv(self):
        magic, t, flags, ident, length = struct.unpack("<IHHII", self.recv_exact(16))
        return t, ident, self.recv_exact(length)
    def hello(self, version=1, key=None, features=0):
        nc = os.urandom(32)
        if key is not None:
            features |= 1
        self.send(msg(HELLO, struct.pack("<HHIQ", version, 1, 0, features) + nc))
        t, ident, p = self.recv()
        if t != HELLO_REPLY or key is None:
            return t, p
        ns = p[16:48]
        proof = hmac.new(key, b"ferry-ps-client" + nc + ns, hashlib.sha256).digest()
        self.send(msg(AUTH, proof, 2))
        return self.recv()[0::2]

def error_text(t, p):
    if t != ERROR:
        return "no error (type %d)" % t
    code, n = struct.unpack("<IH", p[:6])
    return "code %d: %s" % (code, p[6:6 + n].decode(errors="replace"))

def expect_error(conn_fn, what, needle):
    try:
        t, p = conn_fn()
    except (EOFError, ConnectionResetError, BrokenPipeError) as e:
        print("FAIL: %s: connection closed without an ERROR (%s)" % (what, e))
        sys.exit(1)
    text = error_text(t, p)
    if t != ERROR or needle.lower() not in text.lower():
        print("FAIL: %s: expected an ERROR with '%s', got %s" % (what, needle, text))
        sys.exit(1)
    print("# %s refused: %s" % (what, text))

def session(port, dirname, pages, pid=4242, zero_at=None, key=None):
    c = Conn(port)
    t, p = c.hello(key=key)
    if t not in (HELLO_REPLY, AUTH_OK):
        return t, p
    c.send(msg(OPEN, open_payload(pid, dirname, snap=b"0123abcd"), 3))
    t, ident, p = c.recv()
    if t != OK:
        return t, p
    data = b"".join(bytes([i % 251]) * 4096 for i in range(pages))
    c.send(hdr(ADD_PAGES, 16 + len(data), 4) + struct.pack("<QQ", 0x10000, pages) + data)
    runs = 1
    if zero_at is not None:
        c.send(msg(ADD_ZERO, struct.pack("<QQ", zero_at, 2), 5))
        runs += 1
    c.send(msg(COMMIT, struct.pack("<QQ", pages, runs), 6))
    t, ident, p = c.recv()
    if t == OK:
        c.send(msg(CLOSE, struct.pack("<I", 0), 7))
        c.recv()
    return t, p

def after_open(port, payload_fn):
    c = Conn(port)
    t, p = c.hello()
    assert t == HELLO_REPLY, error_text(t, p)
    c.send(msg(OPEN, open_payload(4242, b"bad"), 3))
    t, ident, p = c.recv()
    assert t == OK, error_text(t, p)
    c.send(payload_fn())
    return c.recv()[0::2]

def raw_first(port, b):
    c = Conn(port)
    c.send(b)
    return c.recv()[0::2]

cmd, port = sys.argv[1], int(sys.argv[2])
if cmd == "good":
    t, p = session(port, sys.argv[3].encode(), 64, zero_at=0x10000 + 64 * 4096 + 8192)
    if t != OK:
        print("FAIL: the good session was not committed: " + error_text(t, p)); sys.exit(1)
elif cmd == "good-key":
    t, p = session(port, sys.argv[3].encode(), 8, key=open(sys.argv[4], "rb").read())
    if t != OK:
        print("FAIL: the good session with the key failed: " + error_text(t, p)); sys.exit(1)
elif cmd == "wrong-key":
    expect_error(lambda: session(port, b"keyed", 8, key=b"not the key at all!!"), "wrong key",
                 "authentication failed")
    expect_error(lambda: session(port, b"keyed", 8), "no key", "requires an auth key")
elif cmd == "hostile":
    expect_error(lambda: Conn(port).hello(version=2), "protocol version 2", "version 1, the client 2")
    expect_error(lambda: raw_first(port, b"GET / HTTP/1.0\r\n\r\n"), "HTTP request", "not a ferry")
    expect_error(lambda: raw_first(port, hdr(99, 0)), "unknown command before hello", "unknown message type")
    expect_error(lambda: raw_first(port, hdr(OPEN, 0x7fffffff)), "oversized length", "length")
    for name in [b"..", b".", b"../../etc", b"a/b", b"/tmp/x", b"x\x00y", b"", b"n" * 256, b".ferry-ps-1-1"]:
        def opener(name=name):
            c = Conn(port)
            c.hello()
            c.send(msg(OPEN, open_payload(4242, name), 3))
            return c.recv()[0::2]
        expect_error(opener, "directory name %r" % name[:20], "")
    expect_error(lambda: after_open(port, lambda: hdr(77, 0)), "unknown command", "unknown message type")
    expect_error(lambda: after_open(port, lambda: hdr(ADD_PAGES, 16 + 4096 * 5000)), "oversized count", "length")
    expect_error(lambda: after_open(port, lambda: msg(ADD_ZERO, struct.pack("<QQ", 0x1000, 1 << 40))), "huge run", "pages at")
    expect_error(lambda: after_open(port, lambda: msg(ADD_HOLE, struct.pack("<QQ", 0x1000, 1))), "hole without parent", "no parent")
    expect_error(lambda: after_open(port, lambda: msg(COMMIT, struct.pack("<QQ", 5, 5))), "commit with wrong counts", "the client sent 5 pages")
    def parentless():
        c = Conn(port)
        c.hello()
        c.send(msg(OPEN, open_payload(4242, b"d9", parent=b"nosuch"), 3))
        return c.recv()[0::2]
    expect_error(parentless, "missing parent", "not on this server")
    # truncated: a header promising 16 bytes, then 5, then gone
    c = Conn(port); c.hello(); c.send(hdr(COMMIT, 16) + b"12345"); c.s.close()
    # vanished in the middle of its data
    c = Conn(port); c.hello()
    c.send(msg(OPEN, open_payload(4242, b"killed"), 3)); c.recv()
    c.send(hdr(ADD_PAGES, 16 + 4096 * 64) + struct.pack("<QQ", 0x10000, 64) + b"x" * 10000)
    c.s.close()
elif cmd == "stream-forever":
    # open a session and stream until killed
    c = Conn(port); c.hello()
    c.send(msg(OPEN, open_payload(4242, b"killed2"), 3)); c.recv()
    addr = 0x10000
    print("streaming", flush=True)
    while True:
        c.send(hdr(ADD_PAGES, 16 + 4096 * 256) + struct.pack("<QQ", addr, 256) + b"z" * (4096 * 256))
        addr += 4096 * 256
PYEOF

ps_start "$T/dst" ps
"$PY" "$T/client.py" hostile "$PS_PORT" >"$T/hostile.out" 2>&1 || fail "hostile peers: $(tail -n 3 "$T/hostile.out")"
cat "$T/hostile.out"

# a client killed mid-stream (SIGKILL, its data half sent)
bg_start stream "$PY" -u "$T/client.py" stream-forever "$PS_PORT"
stream_pid=$BG_PID
wait_line "$BG_LOG" '^streaming' 10 || fail "the streaming client did not start: $(cat "$BG_LOG")"
for i in $(seq 1 50); do
	ls -A "$T/dst" | grep -q '^\.ferry-ps-' && break
	sleep 0.05
done
kill -KILL "$stream_pid"
wait "$stream_pid" 2>/dev/null

pid_alive "$PS_PID" || fail "the page server died"
"$PY" "$T/client.py" good "$PS_PORT" good1 >"$T/good.out" 2>&1 || fail "$(cat "$T/good.out")"
[ -f "$T/dst/good1/pagemap-4242.img" ] && [ -f "$T/dst/good1/pages-4242.img" ] ||
	fail "the good session after the bad ones is not visible: $(ls -A "$T/dst" | tr '\n' ' ')"
"$FERRY" show "$T/dst/good1/pagemap-4242.img" >"$T/show.out" 2>&1 || fail "ferry show of the committed pagemap: $(tail -n 2 "$T/show.out")"
grep -q "0123abcd" "$T/show.out" || fail "the pagemap does not carry the snapshot id of OPEN"

# killed sessions leave nothing; the hostile ones neither (their work directories are gone)
for i in $(seq 1 100); do
	left=$(ls -A "$T/dst" | grep -v '^good1$')
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || fail "left in the server's directory: $left"
grep -q "closed the connection in the middle of a message" "$T/ps.log" ||
	fail "no log line for the vanished client"
errors=$(grep -c "connection dropped" "$T/ps.log")
say "server log: $errors connections dropped, each with one line"

# the same server is still serving
"$PY" "$T/client.py" good "$PS_PORT" good2 >"$T/good.out" 2>&1 || fail "$(cat "$T/good.out")"
[ -f "$T/dst/good2/pagemap-4242.img" ] || fail "the server stopped serving"

# authentication: a server with a key
head -c 32 /dev/urandom >"$T/key"
ps_start "$T/dst-key" pskey --auth-key "$T/key"
"$PY" "$T/client.py" wrong-key "$PS_PORT" >"$T/key.out" 2>&1 || fail "$(tail -n 3 "$T/key.out")"
cat "$T/key.out"
[ -e "$T/dst-key/keyed" ] && fail "a session without the right key wrote something"
"$PY" "$T/client.py" good-key "$PS_PORT" keyed "$T/key" >"$T/goodkey.out" 2>&1 || fail "$(cat "$T/goodkey.out")"
[ -f "$T/dst-key/keyed/pagemap-4242.img" ] || fail "the session with the right key is not visible"
grep -q "authentication failed" "$T/pskey.log" || fail "the server did not log the failed authentication"

# a server stops cleanly on SIGTERM
kill -TERM "$PS_PID"
"$WL/pidwait" "$PS_PID" 10 >/dev/null 2>&1 || fail "page-server did not stop on SIGTERM"
exit 0
