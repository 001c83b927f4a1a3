#!/usr/bin/env bash
# Swap exports with real peers: the first connect creates DIR/STATION.swap of
# the configured size (sparse), TRIM punches a hole (st_blocks drops), a
# reconnect and a server restart land on the same file, a client that gives
# no station name is known by its address, `overlay list` shows the files and
# `overlay reset` removes one (the station then gets a fresh, zeroed file).
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 21230)
dir="$WORK/swap"
spec="swap=$dir,swap,size=64M"
uri="nbd://127.0.0.1:$port/swap"
start_server swap --listen "127.0.0.1:$port" --export "$spec"
[ -d "$dir" ] || fail "the server did not create the swap directory $dir"

"${NBDSH[@]}" -u "$uri@st1" -c "
assert h.get_size() == 64 << 20, h.get_size()
assert h.can_trim()
h.pwrite(b'\x5a' * (8 << 20), 8 << 20)
h.flush()
" || fail "writing 8 MiB to swap@st1 failed"
f="$dir/st1.swap"
[ -f "$f" ] || fail "no $f after the first connect"
[ "$(stat -c %s "$f")" = $((64 << 20)) ] || fail "$f is $(stat -c %s "$f") bytes, expected 64 MiB"
used=$(( $(stat -c %b "$f") * $(stat -c %B "$f") ))
[ "$used" -ge $((8 << 20)) ] && [ "$used" -lt $((16 << 20)) ] || fail "$f uses $used bytes on disk, expected about 8 MiB (sparse)"
pass "first connect created a sparse 64 MiB $f"

"${NBDSH[@]}" -u "$uri@st1" -c "
h.trim(4 << 20, 8 << 20)
h.flush()
assert h.pread(4, (12 << 20) + 100) == b'\x5a' * 4
" || fail "TRIM on swap@st1 failed"
after=$(( $(stat -c %b "$f") * $(stat -c %B "$f") ))
[ "$after" -le $(( (4 << 20) + 65536 )) ] || fail "after TRIM of 4 MiB $f still uses $after bytes (was $used)"
pass "TRIM punched a hole: $used -> $after bytes on disk"

stop_server "$SERVER_PID"
start_server swap2 --listen "127.0.0.1:$port" --export "$spec"
"${NBDSH[@]}" -u "$uri@st1" -c "
assert h.pread(4096, 12 << 20) == b'\x5a' * 4096, 'swap data lost'
assert h.pread(4096, 8 << 20) == bytes(4096), 'trimmed range not zero'
" || fail "after a restart swap@st1 does not hold its data"
# No station name: the client's address names the file.
"${NBDSH[@]}" -u "$uri" -c "h.pwrite(b'x', 0); h.flush()" || fail "swap without a station name failed"
[ -f "$dir/127.0.0.1.swap" ] || fail "no $dir/127.0.0.1.swap for a client known by its address"
pass "reconnect and restart land on the same file; 127.0.0.1 gets its own"

$NBDBOOT overlay list --export "$spec" > "$WORK/list.txt" || fail "overlay list failed"
cat "$WORK/list.txt"
grep -Eq '^127\.0\.0\.1 +swap +64\.0 MiB ' "$WORK/list.txt" && grep -Eq '^st1 +swap +64\.0 MiB +4\.0 MiB ' "$WORK/list.txt" ||
  fail "overlay list does not show both swap files"
$NBDBOOT overlay reset st1 --overlays "$dir" || fail "overlay reset st1 failed"
[ ! -e "$f" ] || fail "reset left $f"
"${NBDSH[@]}" -u "$uri@st1" -c "assert h.pread(4096, 12 << 20) == bytes(4096), 'old data after reset'" ||
  fail "after reset, swap@st1 is not a fresh file"
stop_server "$SERVER_PID"
pass "overlay list shows the swap files; reset gives st1 a fresh one"
