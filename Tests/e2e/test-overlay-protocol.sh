#!/usr/bin/env bash
# The newer protocol pieces on a cow export, with real peers: BLOCK_STATUS
# (nbdinfo --map) mixes the station's overlay (written data, WRITE_ZEROES
# holes) with the base's own holes and data; FAST_ZERO is refused for parts
# of blocks and works for whole ones; an oldstyle listener serves a cow
# export with the client's address as the station.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 21250)
base="$WORK/base.img"
head -c $((1 << 20)) /dev/urandom > "$base"
truncate -s 8M "$base"          # 1 MiB of data, then a hole
sum=$(sha256sum < "$base")
start_server proto --listen "127.0.0.1:$port" --export "root=$base,cow"
uri="nbd://127.0.0.1:$port/root@p"
"${NBDSH[@]}" -u "$uri" -c "
import errno
h.pwrite(b'x' * 4096, 4 << 20)          # into the base's hole
h.zero(131072, 65536)                    # whole blocks of base data -> holes in the overlay
h.zero(8192, 2 << 20, nbd.CMD_FLAG_FAST_ZERO)
try:
    h.zero(100, 10, nbd.CMD_FLAG_FAST_ZERO)
    raise AssertionError('FAST_ZERO of a part of a block succeeded')
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
assert h.pread(131072, 65536) == bytes(131072)
h.flush()
" || fail "writes and zeroes through root@p failed"
nbdinfo --map "$uri" > "$WORK/map.txt" || fail "nbdinfo --map failed"
cat "$WORK/map.txt"
awk '{print $1, $2, $3}' "$WORK/map.txt" > "$WORK/map3.txt"
cat > "$WORK/want.txt" <<'MAP'
0 65536 0
65536 131072 3
196608 851968 0
1048576 3145728 3
4194304 4096 0
4198400 4190208 3
MAP
# Adjacent holes may or may not be merged by the peer: compare after merging.
merge() { awk '{ if (NR > 1 && $3 == t) { l += $2 } else { if (NR > 1) print o, l, t; o = $1; l = $2; t = $3 } } END { print o, l, t }' "$1"; }
[ "$(merge "$WORK/map3.txt")" = "$(merge "$WORK/want.txt")" ] ||
  fail "BLOCK_STATUS of root@p: got $(merge "$WORK/map3.txt" | tr '\n' ';'), want $(merge "$WORK/want.txt" | tr '\n' ';')"
nbdinfo --map "nbd://127.0.0.1:$port/root@q" | awk '{print $1, $2, $3}' > "$WORK/q.txt"
[ "$(merge "$WORK/q.txt")" = "$(printf '0 1048576 0\n1048576 7340032 3')" ] || fail "a new station's map is not the base's: $(cat "$WORK/q.txt")"
stop_server "$SERVER_PID"
pass "BLOCK_STATUS through an overlay: its data and zeroed holes over the base's; FAST_ZERO rules"

start_server old --oldstyle --listen "127.0.0.1:$port" --export "root=$base,cow"
"${NBDSH[@]}" -u "nbd://127.0.0.1:$port" -c "
h.pwrite(b'oldstyle', 0)
h.flush()
assert h.pread(8, 0) == b'oldstyle'
" || fail "oldstyle client on a cow export failed"
[ -e "$base.overlays/127.0.0.1.map" ] || fail "the oldstyle client did not get the overlay of its address 127.0.0.1"
stop_server "$SERVER_PID"
[ "$(sha256sum < "$base")" = "$sum" ] || fail "the base image changed"
pass "oldstyle listener: the cow station is the client's address; base unchanged"
