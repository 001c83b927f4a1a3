#!/usr/bin/env bash
# fio (libnbd engine) mixed random reads and writes with crc32c verification: many
# requests in flight per connection, replies out of order, two jobs = two connections.
. "$(dirname "$0")/lib-server.sh"
command -v fio >/dev/null || fail "fio is not installed (apt-get install fio)"
port=$(free_port 20880)
truncate -s 32M "$WORK/disk.img"
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img"
# fio saves its verify state as local-verify-*.state in the current directory:
# run it in the work directory so the repository stays clean.
(cd "$WORK" && fio --name=verify --ioengine=nbd --uri="nbd://127.0.0.1:$port/disk" --rw=randrw --bs=4k \
    --iodepth=32 --size=16M --numjobs=2 --offset_increment=16M --verify=crc32c --verify_fatal=1 \
    --output="$WORK/fio.txt" > /dev/null 2>&1) || fail "fio failed: $(tail -20 "$WORK/fio.txt")"
grep -q "err= 0" "$WORK/fio.txt" || fail "fio reported errors: $(grep err= "$WORK/fio.txt")"
grep -qi "verify: bad\|crc32c: verify failed" "$WORK/fio.txt" && fail "fio verification failed"
stop_server "$SERVER_PID"
pass "fio randrw 4k, iodepth 32, two connections, crc32c verified"
