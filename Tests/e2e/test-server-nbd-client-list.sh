#!/usr/bin/env bash
# Debian's nbd-client (3.24) lists the exports of `nbdboot serve` (NBD_OPT_LIST, then ABORT).
. "$(dirname "$0")/lib-server.sh"
command -v nbd-client >/dev/null || fail "nbd-client is not installed (apt-get install nbd-client)"
port=$(free_port 20830)
truncate -s 1M "$WORK/a.img" "$WORK/b.img"
start_server main --listen "127.0.0.1:$port" --export "alpha=$WORK/a.img" --export "beta=$WORK/b.img,readonly"
timeout 10 nbd-client -l 127.0.0.1 "$port" > "$WORK/list.out" 2>&1 || fail "nbd-client -l failed: $(cat "$WORK/list.out")"
grep -qx alpha "$WORK/list.out" || fail "nbd-client -l did not list 'alpha': $(cat "$WORK/list.out")"
grep -qx beta "$WORK/list.out" || fail "nbd-client -l did not list 'beta': $(cat "$WORK/list.out")"
stop_server "$SERVER_PID"
pass "nbd-client -l lists alpha and beta"
