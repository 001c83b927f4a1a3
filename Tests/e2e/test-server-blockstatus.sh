#!/usr/bin/env bash
# base:allocation and BLOCK_STATUS with real peers on a sparse file made with
# truncate + dd: nbdinfo --map (and --totals), qemu-img map (qemu's own client),
# nbdsh block_status with and without REQ_ONE, and LIST_META_CONTEXT via nbdinfo.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20800)
M=$((1 << 20))
# 8 MiB: data at 1 MiB..1.5 MiB and at 6 MiB..6 MiB+64 KiB, holes elsewhere.
truncate -s 8M "$WORK/sparse.img"
dd if=/dev/urandom of="$WORK/sparse.img" bs=64K seek=16 count=8 conv=notrunc status=none
dd if=/dev/urandom of="$WORK/sparse.img" bs=64K seek=96 count=1 conv=notrunc status=none
start_server main --listen "127.0.0.1:$port" --export "sparse=$WORK/sparse.img"
uri="nbd://127.0.0.1:$port/sparse"
want="0 $M 3
$M $((M / 2)) 0
$((3 * M / 2)) $((9 * M / 2)) 3
$((6 * M)) 65536 0
$((6 * M + 65536)) $((2 * M - 65536)) 3"

nbdinfo --map --json "$uri" > "$WORK/map.json" || fail "nbdinfo --map failed"
got=$(python3 -c "
import json
for e in json.load(open('$WORK/map.json')): print(e['offset'], e['length'], e['type'])
")
[ "$got" = "$want" ] || fail "nbdinfo --map extents:
$got
expected:
$want"
nbdinfo --map "$uri" > "$WORK/map.txt" || fail "nbdinfo --map (text) failed"
grep -q "hole,zero" "$WORK/map.txt" && grep -q "data" "$WORK/map.txt" || fail "nbdinfo --map text lacks hole,zero/data: $(cat "$WORK/map.txt")"
totals=$(nbdinfo --map --totals "$uri") || fail "nbdinfo --map --totals failed"
grep -Eq "^ *$((M / 2 + 65536)) +[0-9.]+% +0 +data" <<<"$totals" || fail "nbdinfo --map --totals: $totals"

nbdinfo "$uri" > "$WORK/info.txt" || fail "nbdinfo failed"
grep -q "base:allocation" "$WORK/info.txt" || fail "nbdinfo does not list the base:allocation context: $(cat "$WORK/info.txt")"

qemu-img map --output=json -f raw "$uri" > "$WORK/qemu-map.json" || fail "qemu-img map failed"
got=$(python3 -c "
import json
for e in json.load(open('$WORK/qemu-map.json')): print(e['start'], e['length'], 0 if e['data'] else 3, e['zero'])
")
want_qemu=$(while read -r o l t; do echo "$o $l $t $([ "$t" = 3 ] && echo True || echo False)"; done <<<"$want")
[ "$got" = "$want_qemu" ] || fail "qemu-img map extents:
$got
expected:
$want_qemu"

"${NBDSH[@]}" -c "
h = nbd.NBD(); h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION); h.connect_uri('$uri')
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
M = 1 << 20
seen = []
def cb(metacontext, offset, entries, err):
    assert metacontext == 'base:allocation', metacontext
    seen.append((offset, entries))
    return 0
h.block_status(2 * M, M // 2, cb)
assert seen == [(M // 2, [M // 2, 3, M // 2, 0, M, 3])], seen
seen.clear()
h.block_status(2 * M, M + 4096, cb, nbd.CMD_FLAG_REQ_ONE)
assert seen == [(M + 4096, [M // 2 - 4096, 0])], seen
h.pwrite(b'x' * 4096, 4 * M)
seen.clear()
h.block_status(4096, 4 * M, cb)
assert seen == [(4 * M, [4096, 0])], seen
h.shutdown()
" > "$WORK/nbdsh.out" 2>&1 || fail "nbdsh block_status checks failed: $(cat "$WORK/nbdsh.out")"

stop_server "$SERVER_PID"
pass "base:allocation: nbdinfo --map, qemu-img map, nbdsh block_status (REQ_ONE too)"
