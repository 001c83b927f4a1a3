#!/usr/bin/env bash
# `nbdboot serve` command line: bad input exits 2 naming the input; SIGTERM exits 0;
# a restart on the same port works at once (SO_REUSEADDR) even after a client connected.
. "$(dirname "$0")/lib-server.sh"
truncate -s 1M "$WORK/disk.img"

expect_usage_error() {  # NEEDLE ARGS...
  local needle=$1; shift
  local rc=0
  timeout 10 "$NBDBOOT" serve "$@" > "$WORK/out.txt" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "'serve $*' exited $rc, expected 2: $(cat "$WORK/out.txt")"
  grep -qF -- "$needle" "$WORK/out.txt" || fail "'serve $*' message lacks '$needle': $(cat "$WORK/out.txt")"
}
expect_usage_error "/nonexistent/x.img" --listen 127.0.0.1:20899 --export "a=/nonexistent/x.img"
expect_usage_error "'root'" --listen 127.0.0.1:20899 --export root
expect_usage_error "unknown option 'fast'" --listen 127.0.0.1:20899 --export "a=$WORK/disk.img,fast"
expect_usage_error "1 to 65535" --listen 127.0.0.1:70000 --export "a=$WORK/disk.img"
expect_usage_error "1 to 65535" 0 "$WORK/disk.img"
expect_usage_error "PORT FILE" 10809
expect_usage_error "no export" --listen 127.0.0.1:20899
expect_usage_error "given twice" --listen 127.0.0.1:20899 --export "a=$WORK/disk.img" --export "a=$WORK/disk.img"

port=$(free_port 20860)
start_server first --listen "127.0.0.1:$port" --export "a=$WORK/disk.img"
nbdinfo --size "nbd://127.0.0.1:$port/a" > /dev/null || fail "nbdinfo against the first server failed"
stop_server "$SERVER_PID"
grep -q "SIGTERM: shutting down" "$WORK/first.log" || fail "no shutdown line in the log"
start_server second --listen "127.0.0.1:$port" --export "a=$WORK/disk.img"
wait_port "$port"
nbdinfo --size "nbd://127.0.0.1:$port/a" > /dev/null || fail "nbdinfo against the restarted server failed"
# A second server on a busy port fails with a clear message (exit 1, not a usage error).
rc=0; timeout 10 "$NBDBOOT" serve --listen "127.0.0.1:$port" --export "a=$WORK/disk.img" > "$WORK/busy.txt" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a second server on a busy port exited $rc, expected 1"
grep -q "another server holds this port" "$WORK/busy.txt" || fail "busy-port message unclear: $(cat "$WORK/busy.txt")"
kill -INT "$SERVER_PID"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SERVER_PID"; rc=$?
[ "$rc" = 0 ] || fail "SIGINT: exit $rc, expected 0"
pass "usage errors exit 2 with clear messages; SIGTERM/SIGINT exit 0; restart on the same port works"
