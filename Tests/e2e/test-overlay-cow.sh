#!/usr/bin/env bash
# Per-station copy-on-write with real peers: nbdcopy and nbdsh write through
# root@a and root@b; each station reads only its own writes, a third sees the
# pristine base, the base's sha256 never changes; a server restart finds the
# data; `nbdboot overlay list/commit/reset` (commit compared with qemu-img
# compare against what a client reads through the overlay; reset/commit
# refused while a station is connected).
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 21210)
base="$WORK/base.img"
head -c $((8 << 20)) /dev/urandom > "$base"
head -c $((8 << 20)) /dev/urandom > "$WORK/a.img"
base_sum=$(sha256sum < "$base")
spec="root=$base,cow"
uri="nbd://127.0.0.1:$port/root"
# Bad per-station exports are refused at start (exit 2) with the reason.
expect_refusal() {  # expect_refusal TEXT ARGS...
  local text=$1 rc; shift
  "$NBDBOOT" serve --listen "127.0.0.1:$port" "$@" 2>"$WORK/refused.err" & local pid=$!
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill "$pid"; fail "serve $* started instead of refusing"; }
  wait "$pid"; rc=$?
  [ "$rc" = 2 ] && grep -qF -- "$text" "$WORK/refused.err" || fail "serve $*: exit $rc, $(cat "$WORK/refused.err"); expected exit 2 and '$text'"
}
expect_refusal "drop readonly" --export "root=$base,cow,readonly"
expect_refusal "needs its size" --export "swap=$WORK/swap,swap"
expect_refusal "cannot create the overlay directory $WORK/no/such" --export "root=$base,cow,overlays=$WORK/no/such"
expect_refusal "cannot open the base image $WORK/missing.img" --export "root=$WORK/missing.img,cow"
pass "bad cow/swap exports are refused at start with the reason"

start_server cow --listen "127.0.0.1:$port" --export "$spec"

# Station a: a whole new image, multi-connection, flushed.
nbdcopy --flush "$WORK/a.img" "$uri@a" || fail "nbdcopy into root@a failed"
# Station b: unaligned writes (copy-on-write of partial blocks), not flushed.
"${NBDSH[@]}" -u "$uri@b" -c '
h.pwrite(b"\xbb" * 5000, 1000)
h.pwrite(b"\xcc" * 3, 8388605)
' || fail "nbdsh writes to root@b failed"

check_views() {
  local when=$1
  nbdcopy "$uri@a" "$WORK/a.out" || fail "$when: nbdcopy out of root@a failed"
  cmp -s "$WORK/a.out" "$WORK/a.img" || fail "$when: root@a does not read back what was written"
  "${NBDSH[@]}" -u "$uri@b" -c "
base = open('$base', 'rb').read()
got = h.pread(len(base), 0)
want = bytearray(base)
want[1000:6000] = b'\xbb' * 5000
want[8388605:] = b'\xcc' * 3
assert got == want, 'root@b differs from base + its writes at %d' % next(i for i in range(len(got)) if got[i] != want[i])
" || fail "$when: root@b does not read base + its own writes"
  nbdcopy "$uri@c" "$WORK/c.out" || fail "$when: nbdcopy out of root@c failed"
  cmp -s "$WORK/c.out" "$base" || fail "$when: a new station root@c does not see the pristine base"
  [ "$(sha256sum < "$base")" = "$base_sum" ] || fail "$when: the base image changed"
}
check_views "first run"
pass "stations a, b, c are isolated; base sha256 unchanged"

# A name that is not a station name is refused with the reason.
if "${NBDSH[@]}" -u "$uri@bad%21name" -c 'pass' 2>"$WORK/bad.err"; then fail "root@bad!name was accepted"; fi
grep -q "a station name may hold only" "$WORK/cow.log" || fail "no reason logged for root@bad!name"

stop_server "$SERVER_PID"
start_server cow2 --listen "127.0.0.1:$port" --export "$spec"
check_views "after a restart"
pass "a restarted server finds every station's writes"

# overlay list: a, b and c, idle (no client connected now).
$NBDBOOT overlay list --export "$spec" > "$WORK/list.txt" || fail "overlay list failed"
cat "$WORK/list.txt"
for s in a b c; do grep -Eq "^$s +cow .* idle +$base\$" "$WORK/list.txt" || fail "overlay list: no idle cow line for station $s"; done
grep -Eq '^a +cow +8\.0 MiB' "$WORK/list.txt" || fail "overlay list: station a should hold 8.0 MiB"

# commit/reset refuse while station a is connected.
"${NBDSH[@]}" -u "$uri@a" -c "
import time
open('$WORK/held', 'w').close()
time.sleep(30)
" & holder=$!
for _ in $(seq 100); do [ -e "$WORK/held" ] && break; sleep 0.1; done
[ -e "$WORK/held" ] || fail "the nbdsh holding root@a did not connect"
$NBDBOOT overlay list --overlays "$base.overlays" | grep -Eq '^a .* in-use ' || fail "overlay list does not show station a in use"
if $NBDBOOT overlay commit a --export "$spec" --output "$WORK/new.img" 2>"$WORK/commit.err"; then fail "commit succeeded while root@a is connected"; fi
grep -q "in use by a running server" "$WORK/commit.err" || fail "commit refusal does not say in use: $(cat "$WORK/commit.err")"
if $NBDBOOT overlay reset a --export "$spec" 2>"$WORK/reset.err"; then fail "reset succeeded while root@a is connected"; fi
grep -q "in use by a running server" "$WORK/reset.err" || fail "reset refusal does not say in use: $(cat "$WORK/reset.err")"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
for _ in $(seq 50); do $NBDBOOT overlay list --overlays "$base.overlays" | grep -Eq '^a .* idle ' && break; sleep 0.1; done
pass "commit and reset refuse while the station is connected"

# commit b: the merged image equals what a client reads through root@b.
$NBDBOOT overlay commit b --export "$spec" --output "$WORK/b-new.img" || fail "overlay commit b failed"
qemu-img compare -f raw -F raw "$WORK/b-new.img" "$uri@b" || fail "committed image differs from root@b as served"
[ "$(sha256sum < "$base")" = "$base_sum" ] || fail "commit changed the base"
if $NBDBOOT overlay commit b --export "$spec" --output "$WORK/b-new.img" 2>/dev/null; then fail "commit overwrote an existing output"; fi
pass "overlay commit b == root@b (qemu-img compare)"

# reset a: a reconnect of a sees the pristine base again.
$NBDBOOT overlay reset a --export "$spec" || fail "overlay reset a failed"
[ ! -e "$base.overlays/a.map" ] && [ ! -e "$base.overlays/a.data" ] || fail "reset left station a's files"
nbdcopy "$uri@a" "$WORK/a2.out" || fail "nbdcopy out of root@a after reset failed"
cmp -s "$WORK/a2.out" "$base" || fail "after reset, root@a is not the pristine base"
stop_server "$SERVER_PID"
pass "overlay reset a: station a starts over from the base"
