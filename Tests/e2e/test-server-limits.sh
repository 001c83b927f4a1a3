#!/usr/bin/env bash
# Handshake limits with real sockets: a client that stalls in the handshake is
# closed after --handshake-timeout; the 65th option of one handshake closes it;
# --max-connections refuses extra connections with a log line and admits new
# ones once others close; nbdinfo keeps working throughout; bad values exit 2.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20800)
truncate -s 1M "$WORK/disk.img"
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img" --handshake-timeout 1 --max-connections 3

python3 - "$port" > "$WORK/raw.out" 2>&1 <<'PY' || fail "raw limit checks: $(cat "$WORK/raw.out")"
import socket, struct, sys, time
port = int(sys.argv[1])
def connect():
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    return s
def recv(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: return None
        b += c
    return b
# 1. Stall after the greeting: closed after about 1 s.
s = connect(); assert recv(s, 18)[:8] == b'NBDMAGIC'
t = time.monotonic()
assert s.recv(1) == b'', 'the server sent something to a stalled client'
took = time.monotonic() - t
assert 0.5 < took < 3, 'closed after %.2f s, expected about 1 s' % took
s.close()
# 2. 64 options are answered, the 65th closes the connection.
s = connect(); recv(s, 18); s.sendall(struct.pack('>I', 1))
for i in range(64):
    s.sendall(b'IHAVEOPT' + struct.pack('>II', 0x7777, 0))
    head = recv(s, 20)
    assert head is not None, 'closed at option %d' % (i + 1)
    assert struct.unpack('>I', head[12:16])[0] == 0x80000001
    recv(s, struct.unpack('>I', head[16:20])[0])
s.sendall(b'IHAVEOPT' + struct.pack('>II', 0x7777, 0))
assert s.recv(1) == b'', 'the 65th option was answered'
s.close()
# 3. Three connections are admitted, the fourth is closed without a greeting.
held = [connect() for _ in range(3)]
for h in held: assert recv(h, 18) is not None
extra = connect()
assert extra.recv(1) == b'', 'a 4th connection got a greeting'
extra.close()
held.pop().close()
for _ in range(50):
    again = connect()
    if recv(again, 18) is not None: break
    again.close(); time.sleep(0.1)
else:
    raise AssertionError('no connection admitted after one closed')
again.close()
for h in held: h.close()
PY
grep -q "handshake timed out after 1 s (--handshake-timeout)" "$WORK/main.log" || fail "no handshake timeout line in the log"
grep -q "more than 64 options in one handshake" "$WORK/main.log" || fail "no option cap line in the log"
grep -q "refusing connection from 127.0.0.1:[0-9]*: 3 connections are open, the limit set by --max-connections (3)" "$WORK/main.log" \
  || fail "no connection cap line in the log"
# The held connections are gone (each times out or was closed): a normal client works.
for _ in $(seq 50); do nbdinfo --size "nbd://127.0.0.1:$port/disk" > "$WORK/size.txt" 2>/dev/null && break; sleep 0.1; done
[ "$(cat "$WORK/size.txt")" = 1048576 ] || fail "nbdinfo after the limit checks: $(cat "$WORK/size.txt")"
stop_server "$SERVER_PID"

for bad in "--handshake-timeout 0" "--handshake-timeout abc" "--max-connections 0"; do
  rc=0; "$NBDBOOT" serve --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img" $bad > "$WORK/bad.txt" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "serve $bad exited $rc, expected 2: $(cat "$WORK/bad.txt")"
  grep -q -- "${bad%% *}" "$WORK/bad.txt" || fail "serve $bad: the message does not name the option: $(cat "$WORK/bad.txt")"
done
pass "handshake timeout, 64-option cap, --max-connections with a log line, bad values refused"
