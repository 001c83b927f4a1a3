#!/usr/bin/env bash
# kill -9 of the server right after a client's FLUSH: after a restart the
# station reads exactly what it flushed (overlay data and map were durable),
# writes made after that FLUSH read either new or old data (never anything
# else), and the base is unchanged. Three rounds: FLUSH on the writing
# connection, FLUSH on a second connection of the station (CAN_MULTI_CONN),
# FUA writes; each round kills the server while the client is still connected.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 21220)
base="$WORK/base.img"
head -c $((4 << 20)) /dev/urandom > "$base"
base_sum=$(sha256sum < "$base")
spec="root=$base,cow"
uri="nbd://127.0.0.1:$port/root@crash"

for round in 1 2 3; do
  start_server "round$round" --listen "127.0.0.1:$port" --export "$spec"
  rm -f "$WORK/flushed"
  # Each round writes a pattern of its own at its own offsets (partial blocks
  # included), FLUSHes (or uses FUA), records what it flushed, then writes more
  # without flushing and waits to be killed.
  "${NBDSH[@]}" -u "$uri" -c "
import os, time
r = $round
pat = bytes((i * 7 + r) % 251 + 1 for i in range(65536))
spots = [(r * 100000 + 17, 20000), (r * 300000, 4096), (4194304 - 5000 * r, 700)]
for off, n in spots:
    if r == 3:
        h.pwrite(pat[:n], off, nbd.CMD_FLAG_FUA)
    else:
        h.pwrite(pat[:n], off)
if r == 1:
    h.flush()
elif r == 2:
    # Multi-conn: the FLUSH of another connection of the station covers h's writes.
    h2 = nbd.NBD()
    h2.connect_uri('$uri')
    assert h2.can_multi_conn()
    h2.flush()
with open('$WORK/flushed.tmp', 'w') as f:
    for off, n in spots:
        f.write('%d %d\n' % (off, n))
os.rename('$WORK/flushed.tmp', '$WORK/flushed')
# Unflushed: may be lost, must not damage anything flushed.
h.pwrite(b'\xee' * 9000, 2000000 + r * 10000)
time.sleep(60)
" &
  client=$!
  for _ in $(seq 200); do [ -e "$WORK/flushed" ] && break; sleep 0.05; done
  [ -e "$WORK/flushed" ] || { kill "$client" 2>/dev/null; fail "round $round: the client did not flush"; }
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
  kill "$client" 2>/dev/null; wait "$client" 2>/dev/null
  cp "$WORK/flushed" "$WORK/flushed.$round"
  pass "round $round: server killed with -9 right after the FLUSH"
done

start_server final --listen "127.0.0.1:$port" --export "$spec"
"${NBDSH[@]}" -u "$uri" -c "
base = open('$base', 'rb').read()
got = h.pread(len(base), 0)
want = bytearray(base)
for r in (1, 2, 3):
    pat = bytes((i * 7 + r) % 251 + 1 for i in range(65536))
    for line in open('$WORK/flushed.%d' % r):
        off, n = map(int, line.split())
        want[off:off + n] = pat[:n]
unflushed = [(2000000 + r * 10000, 9000) for r in (1, 2, 3)]
for i in range(len(got)):
    if got[i] != want[i]:
        if any(o <= i < o + n for o, n in unflushed) and got[i] == 0xee:
            continue
        raise AssertionError('byte %d: got %d, flushed/base data is %d' % (i, got[i], want[i]))
print('all flushed data exact over', len(got), 'bytes')
" || fail "after kill -9 and restart, the station's flushed data is not exact"
[ "$(sha256sum < "$base")" = "$base_sum" ] || fail "the base image changed"
stop_server "$SERVER_PID"
pass "kill -9 after FLUSH/FUA: every flushed byte back after restart, base unchanged"
