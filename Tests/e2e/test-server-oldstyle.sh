#!/usr/bin/env bash
# --oldstyle: the 152-byte greeting and straight to transmission. A raw Python
# client checks the greeting and a READ with its simple reply; libnbd's nbdinfo
# and nbdsh (which still speak oldstyle) read size, flags and data; the
# classic form `--oldstyle PORT FILE` works too; two exports are refused.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20890)
head -c $((2 << 20)) /dev/urandom > "$WORK/old.img"
start_server main --oldstyle --listen "127.0.0.1:$port" --export "old=$WORK/old.img"
grep -q "listening on 127.0.0.1:$port (oldstyle protocol)" "$WORK/main.log" || fail "no oldstyle listening line"

python3 - "$port" "$WORK/old.img" > "$WORK/raw.out" 2>&1 <<'PY' || fail "raw oldstyle client: $(cat "$WORK/raw.out")"
import socket, struct, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
def recv(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, 'server closed'
        b += c
    return b
g = recv(152)
magic, cliserv, size, flags = struct.unpack('>8sQQI', g[:28])
assert magic == b'NBDMAGIC' and cliserv == 0x00420281861253, g[:16]
assert size == 2 << 20, size
assert flags & 1 and not flags & 0x80, hex(flags)     # HAS_FLAGS, no SEND_DF
assert g[28:] == bytes(124)
s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 0xfeed, 4096, 512))   # READ 512 at 4096
magic, err, cookie = struct.unpack('>IIQ', recv(16))
assert (magic, err, cookie) == (0x67446698, 0, 0xfeed), (hex(magic), err, cookie)
assert recv(512) == open(sys.argv[2], 'rb').read()[4096:4608]
s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 2, 1, 0, 0))             # DISC
assert s.recv(1) == b''
PY

nbdinfo --json "nbd://127.0.0.1:$port" > "$WORK/info.json" || fail "nbdinfo (oldstyle) failed"
python3 -c "
import json
d = json.load(open('$WORK/info.json'))
assert d['protocol'] == 'oldstyle', d['protocol']
e = d['exports'][0]
assert e['export-size'] == 2 << 20 and e['can_flush'] and not e['can_df'], e
" || fail "nbdinfo (oldstyle) values: $(cat "$WORK/info.json")"
"${NBDSH[@]}" -c "
h = nbd.NBD(); h.connect_uri('nbd://127.0.0.1:$port')
assert h.get_protocol() == 'oldstyle'
h.pwrite(b'oldstyle', 65536, nbd.CMD_FLAG_FUA)
assert h.pread(8, 65536) == b'oldstyle'
h.shutdown()
" > "$WORK/nbdsh.out" 2>&1 || fail "nbdsh (oldstyle): $(cat "$WORK/nbdsh.out")"
[ "$(dd if="$WORK/old.img" bs=1 skip=65536 count=8 status=none)" = oldstyle ] || fail "the write is not in the file"
stop_server "$SERVER_PID"

# The seed-era form: nbd-server PORT FILE, oldstyle.
start_server classic --oldstyle --listen 127.0.0.1 "$port" "$WORK/old.img"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = $((2 << 20)) ] || fail "classic --oldstyle: wrong size"
stop_server "$SERVER_PID"

rc=0; "$NBDBOOT" serve --oldstyle --listen "127.0.0.1:$port" --export "a=$WORK/old.img" --export "b=$WORK/old.img" > "$WORK/two.txt" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "exactly one export per listener" "$WORK/two.txt" || fail "--oldstyle with two exports: exit $rc, $(cat "$WORK/two.txt")"
pass "oldstyle: 152-byte greeting, simple replies, nbdinfo/nbdsh, classic form, one export only"
