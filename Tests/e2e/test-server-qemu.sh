#!/usr/bin/env bash
# qemu's own NBD client (not libnbd): qemu-img info/compare/convert and qemu-io
# WRITE, FUA WRITE, TRIM (discard), WRITE_ZEROES (write -z, with and without
# unmap), FLUSH against `nbdboot serve`.
. "$(dirname "$0")/lib-server.sh"
command -v qemu-io >/dev/null || fail "qemu-io is not installed (apt-get install qemu-utils)"
port=$(free_port 20870)
head -c $((4 << 20)) /dev/urandom > "$WORK/disk.img"
cp "$WORK/disk.img" "$WORK/orig.img"
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img"
uri="nbd://127.0.0.1:$port/disk"

qemu-img info -f raw "$uri" > "$WORK/info.txt" 2>&1 || fail "qemu-img info failed: $(cat "$WORK/info.txt")"
grep -q "virtual size: 4 MiB (4194304 bytes)" "$WORK/info.txt" || fail "qemu-img info: unexpected size: $(cat "$WORK/info.txt")"
qemu-img compare -f raw -F raw "$WORK/orig.img" "$uri" > /dev/null || fail "qemu-img compare: export differs from its file"

qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' -c 'write -f -P 0xcd 64k 4k' \
  -c 'read -P 0xcd 64k 4k' -c 'discard 1M 1M' -c 'write -z 2M 256k' -c 'write -z -u 3M 256k' \
  -c 'read -P 0 2M 256k' -c 'read -P 0 3M 256k' -c 'flush' "$uri" > "$WORK/io.txt" 2>&1 \
  || fail "qemu-io failed: $(cat "$WORK/io.txt")"
grep -qi "fail\|error" "$WORK/io.txt" && fail "qemu-io reported a problem: $(cat "$WORK/io.txt")"
python3 - "$WORK/disk.img" "$WORK/orig.img" <<'PY' || fail "backing file content after qemu-io is wrong (see above)"
import sys
d, o = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
assert d[:65536] == b'\xab' * 65536, 'write -P 0xab 0 64k'
assert d[65536:69632] == b'\xcd' * 4096, 'FUA write -P 0xcd 64k 4k'
assert d[1 << 20:2 << 20] == bytes(1 << 20), 'discard 1M 1M must read back as zeroes (PUNCH_HOLE)'
M, K = 1 << 20, 1 << 10
assert d[2 * M:2 * M + 256 * K] == bytes(256 * K), 'write -z 2M 256k'
assert d[3 * M:3 * M + 256 * K] == bytes(256 * K), 'write -z -u 3M 256k'
assert d[2 * M + 256 * K:3 * M] == o[2 * M + 256 * K:3 * M], 'bytes outside the touched ranges changed'
assert d[3 * M + 256 * K:] == o[3 * M + 256 * K:], 'bytes outside the touched ranges changed'
import os
fd = os.open(sys.argv[1], os.O_RDONLY)
# write -z -u sent WRITE_ZEROES without NO_HOLE, which punches a hole.
assert os.lseek(fd, 3 * M, os.SEEK_HOLE) == 3 * M, 'write -z -u did not punch a hole'
assert os.lseek(fd, 3 * M, os.SEEK_DATA) == 3 * M + 256 * K, 'the hole is not exactly the write -z -u range'
PY
grep -q "conn [0-9]*: export 'disk' via GO (4194304 bytes, flags 0x[0-9a-f]*, structured replies" "$WORK/main.log" \
  || fail "qemu did not negotiate structured replies"
qemu-img convert -f raw -O raw "$uri" "$WORK/out.img" || fail "qemu-img convert out of the export failed"
cmp -s "$WORK/out.img" "$WORK/disk.img" || fail "qemu-img convert copy differs from the backing file"
stop_server "$SERVER_PID"
pass "qemu-img and qemu-io: info, compare, write, FUA, discard, write zeroes, flush, convert"
