#!/usr/bin/env bash
# Allow lists (authfile) and listeners on IPv4, IPv6 and a Unix socket at once.
# The export 'lab' admits 127.0.0.2 and ::1 only: a client from 127.0.0.1 gets
# ERR_POLICY to GO and INFO and a close for EXPORT_NAME, while LIST still shows
# every export (as nbd-server); the same client through [::1] and through the
# Unix socket (local clients pass allow lists) is served; a raw client bound to
# 127.0.0.2 is served over 127.0.0.1. A SIGHUP with a narrower authfile closes
# the held 127.0.0.2 connection. As root, user = nobody drops privileges.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20820)
truncate -s 1M "$WORK/lab.img" "$WORK/open.img"
printf '# the lab\n127.0.0.2\n::1/128\n10.0.2.0/24\n' > "$WORK/lab.allow"
cat > "$WORK/nbd.conf" <<CONF
[generic]
    listenaddr = 127.0.0.1, ::1
    port = $port
    unixsock = $WORK/nbd.sock
    duallisten = true
    allowlist = true
    user = nobody
[lab]
    exportname = $WORK/lab.img
    authfile = $WORK/lab.allow
[open]
    exportname = $WORK/open.img
CONF
chmod 755 "$WORK"; chmod 666 "$WORK/lab.img" "$WORK/open.img"
start_server main -C "$WORK/nbd.conf"
for _ in $(seq 30); do [ "$(grep -c "listening on" "$WORK/main.log")" -ge 3 ] && break; sleep 0.1; done
for l in "unix:$WORK/nbd.sock" "127.0.0.1:$port" "\[::1\]:$port"; do
  grep -q "listening on $l" "$WORK/main.log" || fail "no listener $l"
done
if [ "$(id -u)" = 0 ]; then
  grep -q "^Uid:.*65534" "/proc/$SERVER_PID/status" || fail "user = nobody: the server still runs as $(grep ^Uid: "/proc/$SERVER_PID/status")"
fi

nbdinfo --size "nbd://127.0.0.1:$port/lab" > "$WORK/v4.out" 2>&1 && fail "127.0.0.1 was admitted to 'lab'"
grep -qi "access denied\|policy" "$WORK/v4.out" || fail "nbdinfo from 127.0.0.1 did not see the policy error: $(cat "$WORK/v4.out")"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/open")" = 1048576 ] || fail "'open' over IPv4"
[ "$(nbdinfo --size "nbd://[::1]:$port/lab")" = 1048576 ] || fail "'lab' over IPv6 from ::1"
[ "$(nbdinfo --size "nbd+unix:///lab?socket=$WORK/nbd.sock")" = 1048576 ] || fail "'lab' over the Unix socket"
timeout 10 nbd-client -l 127.0.0.1 "$port" > "$WORK/list.out" 2>&1 || fail "nbd-client -l from 127.0.0.1: $(cat "$WORK/list.out")"
grep -qx lab "$WORK/list.out" && grep -qx open "$WORK/list.out" || fail "LIST must show every export: $(cat "$WORK/list.out")"

python3 - "$port" "$WORK" > "$WORK/raw.out" 2>&1 <<'PY' &
import socket, struct, sys
port = int(sys.argv[1])
def conn(source):
    s = socket.socket(); s.settimeout(10); s.bind((source, 0)); s.connect(('127.0.0.1', port))
    def recv(n):
        b = b''
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: return None
            b += c
        return b
    assert recv(18)[:8] == b'NBDMAGIC'
    s.sendall(struct.pack('>I', 3))
    return s, recv
def go(s, recv, name, code=7):
    s.sendall(b'IHAVEOPT' + struct.pack('>II', code, 6 + len(name)) + struct.pack('>I', len(name)) + name + b'\0\0')
    while True:
        _, _, rtype, n = struct.unpack('>QIII', recv(20)); recv(n)
        if rtype == 1 or rtype & 0x80000000: return rtype
s, recv = conn('127.0.0.1')
assert go(s, recv, b'lab', 6) == 0x80000002, 'INFO from 127.0.0.1 must be ERR_POLICY'
assert go(s, recv, b'lab') == 0x80000002, 'GO from 127.0.0.1 must be ERR_POLICY'
s.sendall(b'IHAVEOPT' + struct.pack('>II', 1, 3) + b'lab')          # EXPORT_NAME
assert recv(1) is None, 'EXPORT_NAME of a refused export must close'
s, recv = conn('127.0.0.2')
assert go(s, recv, b'lab') == 1, 'GO from 127.0.0.2 must be admitted'
s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 1, 0, 512))      # READ
assert struct.unpack('>IIQ', recv(16)) == (0x67446698, 0, 1)
recv(512)
open(sys.argv[2] + '/held', 'w').close()
# Held until the test narrows the allow list and reloads: then closed.
import os, time
for _ in range(200):
    if os.path.exists(sys.argv[2] + '/reloaded'): break
    time.sleep(0.05)
else:
    raise SystemExit('no reload within 10 s')
try:
    s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 2, 0, 512))
except OSError:
    pass
assert recv(16) is None, 'the connection survived an allow list that refuses it'
print('closed')
PY
raw_pid=$!
for _ in $(seq 100); do [ -f "$WORK/held" ] && break; kill -0 "$raw_pid" 2>/dev/null || break; sleep 0.1; done
[ -f "$WORK/held" ] || fail "raw allow-list checks: $(cat "$WORK/raw.out")"
printf '::1\n' > "$WORK/lab.allow"
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do grep -q "configuration reloaded" "$WORK/main.log" && break; sleep 0.1; done
grep -q "configuration reloaded: added none, changed none, removed none, unchanged 'lab', 'open'; closed 1 connection(s)" "$WORK/main.log" \
  || fail "no or wrong reload line for the narrower allow list"
touch "$WORK/reloaded"
wait "$raw_pid" || fail "raw allow-list checks: $(cat "$WORK/raw.out")"
grep -q closed "$WORK/raw.out" || fail "the held connection was not closed: $(cat "$WORK/raw.out")"
grep -q "GO 'lab': access denied: client 127.0.0.1 is not in the allow list $WORK/lab.allow" "$WORK/main.log" || fail "no log line naming the allow list"
stop_server "$SERVER_PID"
pass "authfile: ERR_POLICY for GO/INFO, close for EXPORT_NAME, LIST shows all; IPv4 + IPv6 + Unix listeners; reload closes a refused connection; user = nobody"
