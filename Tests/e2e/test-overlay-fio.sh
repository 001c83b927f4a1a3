#!/usr/bin/env bash
# fio (libnbd engine) on a cow export: random reads and writes of 512 B to 12 KiB
# at 512-byte alignment (so most writes copy part of a block from the base),
# 32 in flight, two connections of one station sharing its overlay, crc32c
# verified; the base stays byte-identical.
. "$(dirname "$0")/lib-server.sh"
command -v fio >/dev/null || fail "fio is not installed (apt-get install fio)"
port=$(free_port 21240)
head -c $((32 << 20)) /dev/urandom > "$WORK/base.img"
sum=$(sha256sum < "$WORK/base.img")
start_server cow --listen "127.0.0.1:$port" --export "root=$WORK/base.img,cow"
fio --name=verify --ioengine=nbd --uri="nbd://127.0.0.1:$port/root@fio" --rw=randrw --bsrange=512-12k \
    --blockalign=512 --iodepth=32 --size=16M --numjobs=2 --offset_increment=16M --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
    --output="$WORK/fio.txt" > /dev/null 2>&1 || fail "fio failed: $(tail -20 "$WORK/fio.txt")"
grep -q "err= 0" "$WORK/fio.txt" || fail "fio reported errors: $(grep err= "$WORK/fio.txt")"
grep -qi "verify: bad\|crc32c: verify failed" "$WORK/fio.txt" && fail "fio verification failed"
[ "$(sha256sum < "$WORK/base.img")" = "$sum" ] || fail "the base image changed"
stop_server "$SERVER_PID"
pass "fio randrw 512B-12KiB on a cow overlay, iodepth 32, two connections, crc32c verified, base unchanged"
