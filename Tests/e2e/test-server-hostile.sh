#!/usr/bin/env bash
# Hostile clients against one server, measured from outside:
#  1. 500 half-open connections (greeting sent, nothing answered): a normal
#     client still gets its greeting within a second and nbdinfo works, the
#     server's RSS (/proc/PID/status VmRSS) stays bounded, and the handshake
#     timeout (4 s) closes all 500, after which the server is back to 2 threads.
#  2. While libnbd writes and verifies random blocks, other clients send
#     garbage, a 4 GiB option length, a bad request magic, requests past the
#     end, a WRITE cut off mid-payload, 200 pipelined READs abandoned unread,
#     and 20 WRITEs that announce 64 MiB and stall: the verifying client sees
#     no error and the RSS does not grow by the announced 1.25 GiB.
#  3. --max-connections-per-client 4: the 5th connection from 127.0.0.1 is
#     closed before the greeting while 127.0.0.2 is still served.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20830)
truncate -s 64M "$WORK/disk.img"
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img" --handshake-timeout 4
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status"; }
base=$(rss)

python3 - "$port" "$SERVER_PID" > "$WORK/halfopen.out" 2>&1 <<'PY' || fail "half-open phase: $(cat "$WORK/halfopen.out")"
import socket, subprocess, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def status(key):
    for line in open('/proc/%s/status' % pid):
        if line.startswith(key): return int(line.split()[1])
held = []
for i in range(500):
    held.append(socket.create_connection(('127.0.0.1', port), timeout=10))
time.sleep(0.5)
t = time.monotonic()
s = socket.create_connection(('127.0.0.1', port), timeout=5)
greeting = s.recv(18)
took = time.monotonic() - t
assert greeting[:8] == b'NBDMAGIC', greeting
assert took < 1, 'greeting took %.2f s with 500 half-open connections' % took
s.close()
t = time.monotonic()
out = subprocess.run(['nbdinfo', '--size', 'nbd://127.0.0.1:%d/disk' % port], capture_output=True, text=True, timeout=10)
assert out.stdout.strip() == str(64 << 20), out
print('greeting %.3f s, nbdinfo %.3f s, RSS %d KiB, threads %d with 500 half-open' % (took, time.monotonic() - t, status('VmRSS'), status('Threads')))
t = time.monotonic()
for h in held:                                        # the handshake timeout (4 s) closes them all
    h.settimeout(15)
    got = b''
    while True:
        c = h.recv(64)
        if not c: break
        got += c
    assert got[:8] == b'NBDMAGIC', got
    h.close()
print('all 500 closed by the server %.1f s later' % (time.monotonic() - t))
PY
during=$(awk '/with 500 half-open/ { print $(NF-6) }' "$WORK/halfopen.out")
[ -n "$during" ] && [ $((during - base)) -lt 102400 ] || fail "RSS grew from $base KiB to $during KiB with 500 half-open connections (bound: +100 MiB)"
[ "$(grep -c "handshake timed out after 4 s" "$WORK/main.log")" -ge 500 ] || fail "the handshake timeout did not close the 500 half-open connections"
for _ in $(seq 100); do [ "$(threads)" -le 3 ] && break; sleep 0.1; done
[ "$(threads)" -le 3 ] || fail "$(threads) threads left after the half-open clients went away"

# 2. A verifying client and hostile ones at the same time.
"${NBDSH[@]}" -c "
import os, time
h = nbd.NBD(); h.connect_uri('nbd://127.0.0.1:$port/disk')
end = time.monotonic() + 4
n = 0
while time.monotonic() < end:
    off = (n * 7919 % 1000) * 65536
    data = os.urandom(65536)
    h.pwrite(data, off)
    assert h.pread(65536, off) == data, 'block %d came back different' % n
    n += 1
h.flush(); h.shutdown()
print('verified', n, 'blocks')
" > "$WORK/verify.out" 2>&1 &
verify_pid=$!
python3 - "$port" "$SERVER_PID" > "$WORK/hostile.out" 2>&1 <<'PY' || fail "hostile phase: $(cat "$WORK/hostile.out")"
import os, socket, struct, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open('/proc/%s/status' % pid):
        if line.startswith('VmRSS:'): return int(line.split()[1])
def recv(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: return None
        b += c
    return b
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while s.recv(65536): pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
def connect():
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    assert recv(s, 18)[:8] == b'NBDMAGIC'
    return s
def go():
    s = connect()
    s.sendall(struct.pack('>I', 3))
    s.sendall(b'IHAVEOPT' + struct.pack('>II', 7, 10) + struct.pack('>I', 4) + b'disk' + b'\0\0')
    while True:
        _, _, rtype, n = struct.unpack('>QIII', recv(s, 20)); recv(s, n)
        if rtype == 1: return s
        assert not rtype & 0x80000000, hex(rtype)
def request(cmd, cookie, offset, length, flags=0):
    return struct.pack('>IHHQQI', 0x25609513, flags, cmd, cookie, offset, length)
for i in range(20):                                   # garbage right away
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    s.sendall(os.urandom(4096))
    assert closed_within(s, 2), 'a garbage client was not closed'
s = connect(); s.sendall(struct.pack('>I', 3))        # a 4 GiB option length
s.sendall(b'IHAVEOPT' + struct.pack('>II', 1, 0xffffffff))
assert closed_within(s, 1), 'a 4 GiB option length was not closed at once'
s = go(); s.sendall(b'\xde\xad\xbe\xef' + bytes(24))  # bad request magic
assert closed_within(s, 1), 'a bad request magic was not closed'
s = go()                                              # past the end: EINVAL, still usable
s.sendall(request(0, 1, 64 << 20, 512))
assert struct.unpack('>IIQ', recv(s, 16)) == (0x67446698, 22, 1)
s.sendall(request(1, 2, (64 << 20) - 1, 2) + b'xy')
assert struct.unpack('>IIQ', recv(s, 16)) == (0x67446698, 28, 2)
s.sendall(request(0, 3, 0, 512))
assert struct.unpack('>IIQ', recv(s, 16)) == (0x67446698, 0, 3) and len(recv(s, 512)) == 512
s.close()
s = go(); s.sendall(request(1, 1, 0, 1 << 20) + os.urandom(1000)); s.close()   # WRITE cut off
s = go()                                              # 200 READs abandoned unread
s.sendall(b''.join(request(0, i, 0, 1 << 20) for i in range(200)))
time.sleep(0.3); s.close()
before = rss()
stalled = []
for i in range(20):                                   # announce 64 MiB, send 4 KiB, stall
    s = go(); s.sendall(request(1, 1, 0, 64 << 20) + bytes(4096)); stalled.append(s)
time.sleep(1)
grown = rss() - before
print('RSS before the stalled WRITEs %d KiB, grown %d KiB' % (before, grown))
assert grown < 64 * 1024, 'RSS grew by %d KiB for 20 stalled 64 MiB WRITEs' % grown
for s in stalled: s.close()
print('hostile ok')
PY
wait "$verify_pid" || fail "the verifying client failed next to the hostile ones: $(cat "$WORK/verify.out")"
grep -q "verified" "$WORK/verify.out" || fail "the verifying client did not finish: $(cat "$WORK/verify.out")"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/disk")" = $((64 << 20)) ] || fail "nbdinfo after the hostile clients"
kill -0 "$SERVER_PID" || fail "the server died"
stop_server "$SERVER_PID"

# 3. Per-client-address cap.
start_server capped --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img" --max-connections-per-client 4
python3 - "$port" > "$WORK/cap.out" 2>&1 <<'PY' || fail "per-client cap: $(cat "$WORK/cap.out")"
import socket, sys
port = int(sys.argv[1])
def conn(source):
    s = socket.socket(); s.settimeout(5); s.bind((source, 0)); s.connect(('127.0.0.1', port))
    return s
held = [conn('127.0.0.1') for _ in range(4)]
for h in held: assert h.recv(18)[:8] == b'NBDMAGIC'
extra = conn('127.0.0.1')
assert extra.recv(1) == b'', 'a 5th connection from 127.0.0.1 got a greeting'
other = conn('127.0.0.2')
assert other.recv(18)[:8] == b'NBDMAGIC', '127.0.0.2 was refused too'
PY
grep -q "refusing connection from 127.0.0.1:[0-9]*: 4 connections from 127.0.0.1 are open, the limit set by --max-connections-per-client (4)" "$WORK/capped.log" \
  || fail "no per-client refusal line"
stop_server "$SERVER_PID"
echo "$(tr '\n' ' ' < "$WORK/halfopen.out"); base RSS $base KiB; $(head -1 "$WORK/hostile.out"); $(cat "$WORK/verify.out")"
pass "500 half-open connections, garbage, 4 GiB option, bad magic, past-the-end, cut-off and stalled WRITEs, abandoned READs: other clients unaffected, memory bounded; per-client cap"
