#!/usr/bin/env bash
# nbdcopy (multi-connection, pipelined) out of and into `nbdboot serve`, checked with sha256.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20820)
head -c $((8 << 20)) /dev/urandom > "$WORK/disk.img"
head -c $((8 << 20)) /dev/urandom > "$WORK/other.img"
orig=$(sha256sum < "$WORK/disk.img")
start_server main --listen "127.0.0.1:$port" --export "disk=$WORK/disk.img"
uri="nbd://127.0.0.1:$port/disk"

nbdcopy "$uri" "$WORK/out.img" || fail "nbdcopy out of the export failed"
[ "$(sha256sum < "$WORK/out.img")" = "$orig" ] || fail "the copy out differs from the backing file"

nbdcopy --flush "$WORK/other.img" "$uri" || fail "nbdcopy into the export failed"
[ "$(sha256sum < "$WORK/disk.img")" = "$(sha256sum < "$WORK/other.img")" ] \
  || fail "after nbdcopy --flush in, the backing file differs from the source"

# Small requests, one connection, deep queue: replies come back out of order.
nbdcopy -C 1 -R 64 --request-size=4096 "$uri" "$WORK/out2.img" || fail "nbdcopy with 4 KiB requests failed"
cmp -s "$WORK/out2.img" "$WORK/other.img" || fail "the 4 KiB-request copy differs"

stop_server "$SERVER_PID"
pass "nbdcopy: 8 MiB out and in, sha256 identical"
