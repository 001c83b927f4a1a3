#!/usr/bin/env bash
# Structured replies through libnbd (nbdsh): reads of a sparse file arrive as
# data and hole chunks and reassemble to the file's bytes, DF gives one data
# chunk, errors carry the server's message; nbdinfo reports can_df only then.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20800)
# 4 MiB sparse: data at 1 MiB (256 KiB of random bytes) and at 3 MiB (4 KiB), holes elsewhere.
truncate -s 4M "$WORK/sparse.img"
dd if=/dev/urandom of="$WORK/sparse.img" bs=64K seek=16 count=4 conv=notrunc status=none
dd if=/dev/urandom of="$WORK/sparse.img" bs=4K seek=768 count=1 conv=notrunc status=none
start_server main --listen "127.0.0.1:$port" --export "sparse=$WORK/sparse.img"
uri="nbd://127.0.0.1:$port/sparse"

"${NBDSH[@]}" -c "
h = nbd.NBD(); h.connect_uri('$uri')
assert h.get_structured_replies_negotiated(), 'structured replies were not negotiated'
assert h.can_df(), 'SEND_DF must be advertised with structured replies'
want = open('$WORK/sparse.img', 'rb').read()
chunks = []
def chunk(subbuf, offset, status, err):
    chunks.append((offset, len(subbuf), status))
    return 0
got = h.pread_structured(4 << 20, 0, chunk)
assert got == want, 'structured read differs from the file'
chunks.sort()
kinds = [(o, n, {nbd.READ_DATA: 'data', nbd.READ_HOLE: 'hole'}[s]) for o, n, s in chunks]
M = 1 << 20
assert kinds == [(0, M, 'hole'), (M, 256 << 10, 'data'), (M + (256 << 10), 2 * M - (256 << 10), 'hole'),
                 (3 * M, 4096, 'data'), (3 * M + 4096, M - 4096, 'hole')], kinds
chunks.clear()
got = h.pread_structured(128 << 10, M - (64 << 10), chunk, nbd.CMD_FLAG_DF)
assert got == want[M - (64 << 10):M + (64 << 10)]
assert [s for _, _, s in chunks] == [nbd.READ_DATA], 'DF read must be one data chunk: %r' % chunks
h.set_strict_mode(0)
try:
    h.pread(512, 4 << 20)
    raise AssertionError('read past the end succeeded')
except nbd.Error as e:
    assert e.errnum == 22, e
h.shutdown()

s = nbd.NBD(); s.set_request_structured_replies(False); s.connect_uri('$uri')
assert not s.get_structured_replies_negotiated()
assert not s.can_df(), 'SEND_DF must not be advertised with simple replies'
assert s.pread(4 << 20, 0) == want, 'simple read differs from the file'
s.shutdown()
" > "$WORK/nbdsh.out" 2>&1 || fail "nbdsh structured checks failed: $(cat "$WORK/nbdsh.out")"
grep -q "structured replies" "$WORK/main.log" || fail "the server log does not mention structured replies"

nbdinfo --json "$uri" > "$WORK/info.json" || fail "nbdinfo failed"
python3 -c "
import json, sys
e = json.load(open('$WORK/info.json'))['exports'][0]
assert e['can_df'] is True, e
" || fail "nbdinfo does not report can_df: $(cat "$WORK/info.json")"

stop_server "$SERVER_PID"
pass "structured replies: hole/data chunks, DF, error chunks, simple replies for others"
