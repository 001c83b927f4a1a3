#!/usr/bin/env bash
# Handshake options with real peers: nbdinfo shows the export description and
# block sizes (NBD_OPT_INFO with NAME/DESCRIPTION/BLOCK_SIZE), --list shows the
# descriptions; libnbd with TLS "allow" falls back to plain text after our
# ERR_POLICY to STARTTLS and with TLS "require" fails; a raw socket client
# checks STARTTLS -> ERR_POLICY "TLS is not configured", EXTENDED_HEADERS ->
# ERR_UNSUP, a repeated STRUCTURED_REPLY -> ERR_INVALID, and then GO.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20890)
truncate -s 2M "$WORK/root.img"
truncate -s 1M "$WORK/home.img"
start_server main --listen "127.0.0.1:$port" --export "root=$WORK/root.img,readonly,desc=Debian 12 root, shared" \
  --export "home=$WORK/home.img"
uri="nbd://127.0.0.1:$port"

nbdinfo "$uri/root" > "$WORK/info.txt" || fail "nbdinfo failed"
grep -q "description: Debian 12 root, shared" "$WORK/info.txt" || fail "nbdinfo shows no description: $(cat "$WORK/info.txt")"
grep -q "block_size_minimum: 1" "$WORK/info.txt" && grep -q "block_size_preferred: 4096" "$WORK/info.txt" \
  && grep -q "block_size_maximum: 33554432" "$WORK/info.txt" || fail "nbdinfo block sizes: $(cat "$WORK/info.txt")"
nbdinfo --json "$uri" > "$WORK/default.json" || fail "nbdinfo on the default export failed"
python3 -c "
import json
e = json.load(open('$WORK/default.json'))['exports'][0]
assert e['export-name'] == 'root', e   # the canonical name from NBD_INFO_NAME
assert e['description'] == 'Debian 12 root, shared', e
" || fail "the default export's canonical name/description are wrong: $(cat "$WORK/default.json")"
nbdinfo --list --json "$uri" > "$WORK/list.json" || fail "nbdinfo --list failed"
python3 -c "
import json
got = [(e['export-name'], e.get('description')) for e in json.load(open('$WORK/list.json'))['exports']]
assert got == [('root', 'Debian 12 root, shared'), ('home', None)], got
" || fail "nbdinfo --list descriptions: $(cat "$WORK/list.json")"

"${NBDSH[@]}" -c "
h = nbd.NBD(); h.set_tls(nbd.TLS_ALLOW); h.connect_uri('nbd://127.0.0.1:$port/home')
assert not h.get_tls_negotiated()
assert h.get_size() == 1 << 20
h.shutdown()
r = nbd.NBD(); r.set_tls(nbd.TLS_REQUIRE)
try:
    r.connect_uri('nbd://127.0.0.1:$port/home')
    raise AssertionError('TLS required but the connection succeeded')
except nbd.Error as e:
    pass
" > "$WORK/tls.out" 2>&1 || fail "libnbd TLS allow/require: $(cat "$WORK/tls.out")"

python3 - "$port" > "$WORK/raw.out" 2>&1 <<'PY' || fail "raw option checks: $(cat "$WORK/raw.out")"
import socket, struct, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
def recv(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, 'server closed'
        b += c
    return b
assert recv(18) == b'NBDMAGICIHAVEOPT\x00\x03'
s.sendall(struct.pack('>I', 3))
def option(code, data=b''):
    s.sendall(b'IHAVEOPT' + struct.pack('>II', code, len(data)) + data)
    replies = []
    while True:
        magic, opt, rtype, n = struct.unpack('>QIII', recv(20))
        assert magic == 0x3e889045565a9 and opt == code, (hex(magic), opt)
        replies.append((rtype, recv(n)))
        if rtype == 1 or rtype & 0x80000000: return replies
assert option(5) == [(0x80000002, b'TLS is not configured')], 'STARTTLS'
assert option(11)[0][0] == 0x80000001, 'EXTENDED_HEADERS'
assert option(8) == [(1, b'')], 'STRUCTURED_REPLY'
assert option(8)[0][0] == 0x80000003, 'repeated STRUCTURED_REPLY'
go = option(7, struct.pack('>I', 4) + b'home' + struct.pack('>HHHH', 3, 0, 1, 2))
assert go[-1] == (1, b''), go
info = {struct.unpack('>H', d[:2])[0]: d[2:] for t, d in go if t == 3}
assert struct.unpack('>QH', info[0]) == (1 << 20, 0xded), info[0]     # flags include SEND_DF
assert info[1] == b'home' and 2 not in info, info
assert struct.unpack('>III', info[3]) == (1, 4096, 32 << 20), info[3]
s.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 2, 1, 0, 0))        # DISC
s.close()
PY
grep -q "export 'root' .*\"Debian 12 root, shared\"" "$WORK/main.log" || fail "the server log does not show the description"

stop_server "$SERVER_PID"
pass "INFO name/description/block sizes, descriptions in LIST, STARTTLS ERR_POLICY, EXTENDED_HEADERS ERR_UNSUP"
