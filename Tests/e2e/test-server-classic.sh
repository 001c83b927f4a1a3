#!/usr/bin/env bash
# The classic nbd-server form `nbdboot serve PORT FILE` (one export named ""), read by nbdinfo
# and nbdcopy. --listen 127.0.0.1 keeps the test off other interfaces.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20840)
head -c $((3 << 20)) /dev/urandom > "$WORK/disk.img"
start_server main --listen 127.0.0.1 "$port" "$WORK/disk.img"
grep -q "listening on 127.0.0.1:$port" "$WORK/main.log" || fail "expected 'listening on 127.0.0.1:$port' in the log"
size=$(nbdinfo --size "nbd://127.0.0.1:$port") || fail "nbdinfo --size on the default export failed"
[ "$size" = $((3 << 20)) ] || fail "size is '$size', expected $((3 << 20))"
nbdcopy "nbd://127.0.0.1:$port" "$WORK/out.img" || fail "nbdcopy of the default export failed"
cmp -s "$WORK/out.img" "$WORK/disk.img" || fail "the copy differs from the file"
stop_server "$SERVER_PID"
pass "classic form PORT FILE serves the default export"
