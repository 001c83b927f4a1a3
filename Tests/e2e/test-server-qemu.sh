#!/usr/bin/env bash
# qemu's own NBD client (not libnbd): qemu-img info/compare/convert and qemu-io
# WRITE, FUA WRITE, TRIM (discard), FLUSH against `nbdboot serve`.
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
  -c 'read -P 0xcd 64k 4k' -c 'discard 1M 1M' -c 'flush' "$uri" > "$WORK/io.txt" 2>&1 \
  || fail "qemu-io failed: $(cat "$WORK/io.txt")"
grep -qi "fail\|error" "$WORK/io.txt" && fail "qemu-io reported a problem: $(cat "$WORK/io.txt")"
python3 - "$WORK/disk.img" "$WORK/orig.img" <<'PY' || fail "backing file content after qemu-io is wrong (see above)"
import sys
d, o = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
assert d[:65536] == b'\xab' * 65536, 'write -P 0xab 0 64k'
assert d[65536:69632] == b'\xcd' * 4096, 'FUA write -P 0xcd 64k 4k'
assert d[1 << 20:2 << 20] == bytes(1 << 20), 'discard 1M 1M must read back as zeroes (PUNCH_HOLE)'
assert d[2 << 20:] == o[2 << 20:], 'bytes outside the touched ranges changed'
PY
qemu-img convert -f raw -O raw "$uri" "$WORK/out.img" || fail "qemu-img convert out of the export failed"
cmp -s "$WORK/out.img" "$WORK/disk.img" || fail "qemu-img convert copy differs from the backing file"
stop_server "$SERVER_PID"
pass "qemu-img and qemu-io: info, compare, write, FUA, discard, flush, convert"
