#!/usr/bin/env bash
# WRITE_ZEROES, CACHE and big requests through libnbd (nbdsh): zero without
# NO_HOLE punches a hole in the backing file (st_blocks drop, SEEK_HOLE finds
# it), zero with NO_HOLE keeps it allocated, FAST_ZERO fails with ENOTSUP where
# only the slow path exists (tmpfs: no ZERO_RANGE), CACHE succeeds, and a
# 48 MiB WRITE + READ (above the advertised 32 MiB maximum) is served.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20800)
head -c $((64 << 20)) /dev/urandom > "$WORK/disk.img"
shm=""
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm=$(mktemp /dev/shm/nbdboot-e2e.XXXXXX)
  head -c $((1 << 20)) /dev/urandom > "$shm"
  trap 'rm -f "$shm"; cleanup' EXIT
fi
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img" ${shm:+--export "shm=$shm"}
uri="nbd://127.0.0.1:$port"

"${NBDSH[@]}" -c "
import errno, os
img = '$WORK/disk.img'
def blocks(): return os.stat(img).st_blocks * 512
h = nbd.NBD(); h.set_strict_mode(0); h.connect_uri('$uri/disk')
assert h.can_zero() and h.can_fast_zero() and h.can_cache()
M = 1 << 20
b0 = blocks()
h.zero(M, M)                                   # 1..2 MiB: may punch a hole
assert h.pread(M, M) == bytes(M)
b1 = blocks()
assert b1 <= b0 - M, 'WRITE_ZEROES did not punch a hole: %d -> %d bytes allocated' % (b0, b1)
fd = os.open(img, os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_HOLE) == M, 'SEEK_HOLE finds no hole at 1 MiB'
assert os.lseek(fd, M, os.SEEK_DATA) == 2 * M, 'SEEK_DATA: the hole does not end at 2 MiB'
h.zero(3 * M, 2 * M, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)   # 2..5 MiB: stays allocated
assert h.pread(3 * M, 2 * M) == bytes(3 * M)
assert blocks() >= b1, 'WRITE_ZEROES with NO_HOLE freed space: %d -> %d bytes allocated' % (b1, blocks())   # metadata may add a block
h.zero(4096, 8 * M, nbd.CMD_FLAG_FAST_ZERO)
h.cache(16 * M, 0)
h.cache(4096, 0, nbd.CMD_FLAG_FUA)
try:
    h.cache(4096, 64 * M)
    raise AssertionError('CACHE past the end succeeded')
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
try:
    h.zero(4096, 64 * M - 2048)
    raise AssertionError('WRITE_ZEROES past the end succeeded')
except nbd.Error as e:
    assert e.errnum == errno.ENOSPC, e
big = os.urandom(48 * M)
h.pwrite(big, 10 * M)
assert h.pread(48 * M, 10 * M) == big, '48 MiB read back differs'
h.flush()
h.shutdown()
" > "$WORK/nbdsh.out" 2>&1 || fail "nbdsh zero/cache checks failed: $(cat "$WORK/nbdsh.out")"
[ "$(dd if="$WORK/disk.img" bs=1M skip=1 count=4 status=none | tr -d '\0' | wc -c)" = 0 ] || fail "1..5 MiB of the backing file is not all zeroes"

if [ -n "$shm" ]; then
  "${NBDSH[@]}" -c "
import errno
h = nbd.NBD(); h.connect_uri('$uri/shm')
try:
    h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE)
    raise AssertionError('FAST_ZERO|NO_HOLE succeeded on tmpfs, which has no ZERO_RANGE')
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
h.zero(65536, 0, nbd.CMD_FLAG_NO_HOLE)          # slow path: pwrite of zeroes
h.zero(65536, 65536, nbd.CMD_FLAG_FAST_ZERO)    # punch works on tmpfs
assert h.pread(131072, 0) == bytes(131072)
h.shutdown()
" > "$WORK/shm.out" 2>&1 || fail "nbdsh FAST_ZERO on tmpfs failed: $(cat "$WORK/shm.out")"
  grep -q "WRITE_ZEROES offset=0 length=65536 flags=0x12: ENOTSUP" "$WORK/main.log" || fail "the server did not log the ENOTSUP"
fi

stop_server "$SERVER_PID"
pass "WRITE_ZEROES (hole, NO_HOLE, FAST_ZERO/ENOTSUP), CACHE, 48 MiB WRITE/READ"
