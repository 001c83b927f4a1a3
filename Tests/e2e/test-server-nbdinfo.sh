#!/usr/bin/env bash
# nbdinfo (libnbd) against `nbdboot serve`: size, flags, block sizes, --list of two exports.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20810)
head -c $((8 << 20)) /dev/urandom > "$WORK/root.img"
truncate -s 1M "$WORK/data.img"
start_server main --listen "127.0.0.1:$port" --export "root=$WORK/root.img" --export "data=$WORK/data.img,readonly"
uri="nbd://127.0.0.1:$port"

size=$(nbdinfo --size "$uri/root") || fail "nbdinfo --size failed"
[ "$size" = 8388608 ] || fail "size of root is '$size', expected 8388608"

nbdinfo --json "$uri/root" > "$WORK/root.json" || fail "nbdinfo --json $uri/root failed"
python3 - "$WORK/root.json" <<'PY' || fail "nbdinfo --json root: unexpected values (see above)"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
want = {"export-size": 8388608, "is_read_only": False, "can_flush": True, "can_fua": True,
        "can_trim": True, "can_multi_conn": True, "can_zero": True, "can_fast_zero": True, "can_cache": True, "can_df": True,
        "block_size_minimum": 1, "block_size_preferred": 4096, "block_size_maximum": 33554432}
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
if bad:
    print("got vs expected:", bad); sys.exit(1)
PY

nbdinfo --is read-only "$uri/data" || fail "data was exported readonly but nbdinfo --is read-only says no"
nbdinfo --is read-only "$uri/root"; rc=$?
[ "$rc" = 2 ] || fail "root is read-write but nbdinfo --is read-only exited $rc (expected 2)"

nbdinfo --list --json "$uri" > "$WORK/list.json" || fail "nbdinfo --list failed"
python3 - "$WORK/list.json" <<'PY' || fail "nbdinfo --list: unexpected exports (see above)"
import json, sys
got = [(e["export-name"], e["export-size"], e["is_read_only"]) for e in json.load(open(sys.argv[1]))["exports"]]
want = [("root", 8388608, False), ("data", 1048576, True)]
if got != want:
    print("exports:", got, "expected:", want); sys.exit(1)
PY

if nbdinfo "$uri/nope" > "$WORK/nope.out" 2>&1; then fail "nbdinfo on an unknown export succeeded"; fi
grep -q "no export 'nope'" "$WORK/main.log" || fail "the server log does not mention the unknown export"
grep -q "conn [0-9]*: export 'root' via" "$WORK/main.log" || fail "the server log does not say which export was chosen"

stop_server "$SERVER_PID"
pass "nbdinfo: size, flags, block sizes, read-only, list of two exports"
