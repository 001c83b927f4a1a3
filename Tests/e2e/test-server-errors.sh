#!/usr/bin/env bash
# Error replies through libnbd (nbdsh, strict mode off so requests reach the server):
# READ past the end -> EINVAL, WRITE past the end -> ENOSPC, WRITE on a read-only export
# -> EPERM, and each connection keeps working. Then a raw socket sends a bad request magic:
# the server closes that connection while an already-connected client goes on.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20850)
truncate -s 1M "$WORK/rw.img"
head -c 65536 /dev/urandom > "$WORK/ro.img"
start_server main --listen "127.0.0.1:$port" --export "rw=$WORK/rw.img" --export "ro=$WORK/ro.img,readonly"

"${NBDSH[@]}" -c "
import errno
def expect(err, what, f):
    try:
        f()
    except nbd.Error as e:
        assert e.errnum == err, '%s: errno %s, expected %s (%s)' % (what, e.errnum, err, e)
        return
    raise AssertionError(what + ': succeeded, expected an error')

rw = nbd.NBD(); rw.set_strict_mode(0); rw.connect_uri('nbd://127.0.0.1:$port/rw')
ro = nbd.NBD(); ro.set_strict_mode(0); ro.connect_uri('nbd://127.0.0.1:$port/ro')
size = rw.get_size()
expect(errno.EINVAL, 'READ past the end', lambda: rw.pread(512, size))
expect(errno.ENOSPC, 'WRITE past the end', lambda: rw.pwrite(b'x' * 512, size - 256))
rw.pwrite(b'hello', 4096, nbd.CMD_FLAG_FUA)
assert rw.pread(5, 4096) == b'hello', 'read back after the errors'
rw.flush()
rw.trim(65536, 1 << 19)
assert ro.is_read_only()
expect(errno.EPERM, 'WRITE on a read-only export', lambda: ro.pwrite(b'y' * 512, 0))
expect(errno.EPERM, 'TRIM on a read-only export', lambda: ro.trim(512, 0))
expect(errno.EINVAL, 'READ past the end of ro', lambda: ro.pread(1, 65536))
assert ro.pread(16, 0) == open('$WORK/ro.img', 'rb').read(16), 'read on ro after the errors'
rw.shutdown(); ro.shutdown()
" > "$WORK/nbdsh.out" 2>&1 || fail "nbdsh checks failed: $(cat "$WORK/nbdsh.out")"
[ "$(dd if="$WORK/rw.img" bs=1 skip=4096 count=5 status=none)" = hello ] || fail "the FUA write is not in the backing file"
grep -q "READ offset=1048576 length=512 flags=0x0: EINVAL" "$WORK/main.log" || fail "the server did not log the refused READ"
grep -q "WRITE offset=0 length=512 flags=0x0: EPERM" "$WORK/main.log" || fail "the server did not log the refused WRITE"

# A healthy client, connected first, must survive a neighbour's protocol violation.
"${NBDSH[@]}" -c "
import socket, struct, time
good = nbd.NBD(); good.connect_uri('nbd://127.0.0.1:$port/rw')
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
def recv(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise AssertionError('server closed during the handshake')
        b += c
    return b
g = recv(18)
assert g[:16] == b'NBDMAGICIHAVEOPT', g
s.sendall(struct.pack('>I', 1))                       # C_FIXED_NEWSTYLE, no NO_ZEROES
s.sendall(b'IHAVEOPT' + struct.pack('>II', 1, 2) + b'rw')   # EXPORT_NAME 'rw'
size, flags = struct.unpack('>QH', recv(10)); recv(124)
assert size == 1 << 20, size
s.sendall(b'\xde\xad\xbe\xef' + bytes(24))            # bad request magic
assert s.recv(1) == b'', 'server answered a bad request magic instead of closing'
s.close()
good.pwrite(b'still', 0); assert good.pread(5, 0) == b'still'
good.shutdown()
" > "$WORK/raw.out" 2>&1 || fail "bad-magic check failed: $(cat "$WORK/raw.out")"
grep -q "bad request magic" "$WORK/main.log" || fail "the server did not log the bad magic"

stop_server "$SERVER_PID"
pass "EINVAL/ENOSPC/EPERM replies, connections survive; bad magic closes only its connection"
