#!/usr/bin/env bash
# nbd-server's configuration format with real peers: `nbdboot serve -C FILE`
# serves the [sections] of the file and of its includedir next to a
# command-line --export; rotational/flush keys show in nbdinfo; SIGHUP adds,
# changes and removes exports while a connection to an unchanged export stays
# up (libnbd keeps reading through it) and one to a changed export is closed;
# a bad file on reload is logged and the old configuration stays; a bad file
# at start exits 2 naming FILE:LINE; allowlist = false refuses LIST;
# copyonwrite/cowdir and swap/swapsize give per-station exports.
. "$(dirname "$0")/lib-server.sh"
port=$(free_port 20810)
mkdir -p "$WORK/conf.d"
truncate -s 2M "$WORK/root.img"
truncate -s 1M "$WORK/home.img" "$WORK/old.img" "$WORK/new.img" "$WORK/extra.img"
printf 'root data' | dd of="$WORK/root.img" conv=notrunc status=none
cat > "$WORK/nbd.conf" <<CONF
# an nbd-server file
[generic]
    listenaddr = 127.0.0.1
    port = $port
    allowlist = true
    includedir = $WORK/conf.d
    max_threads = 4
[root]
    exportname = $WORK/root.img
    readonly = true
    rotational = true
[old]
    exportname = $WORK/old.img
CONF
printf '[home]\nexportname = %s\nflush = false\n' "$WORK/home.img" > "$WORK/conf.d/home.conf"
start_server main -C "$WORK/nbd.conf" --export "extra=$WORK/extra.img"
grep -q "nbd.conf:7: warning: max_threads is nbd-server's and is ignored" "$WORK/main.log" || fail "no warning for max_threads"
uri="nbd://127.0.0.1:$port"

nbdinfo --list --json "$uri" > "$WORK/list.json" || fail "nbdinfo --list failed"
python3 - "$WORK/list.json" <<'PY' || fail "the first export list is wrong: $(cat "$WORK/list.json")"
import json, sys
ex = {e['export-name']: e for e in json.load(open(sys.argv[1]))['exports']}
assert sorted(ex) == ['extra', 'home', 'old', 'root'], sorted(ex)
assert ex['root']['is_read_only'] and ex['root']['is_rotational'] and ex['root']['export-size'] == 2 << 20, ex['root']
assert not ex['home']['can_flush'] and ex['home']['can_trim'] and not ex['home']['is_rotational'], ex['home']
assert ex['extra']['can_flush'] and not ex['extra']['is_read_only'], ex['extra']
PY

# Hold one connection to root (unchanged by the reload) and one to old (removed).
"${NBDSH[@]}" -c "
import os, time
r = nbd.NBD(); r.connect_uri('$uri/root')
o = nbd.NBD(); o.connect_uri('$uri/old')
assert r.pread(9, 0) == b'root data'
open('$WORK/held', 'w').close()
for _ in range(200):
    if os.path.exists('$WORK/reloaded'): break
    time.sleep(0.05)
else:
    raise SystemExit('no reload within 10 s')
assert r.pread(9, 0) == b'root data', 'the connection to the unchanged export broke'
try:
    o.pread(512, 0)
    raise SystemExit('the connection to the removed export still works')
except nbd.Error:
    pass
print('held-ok')
" > "$WORK/held.out" 2>&1 &
held_pid=$!
for _ in $(seq 100); do [ -f "$WORK/held" ] && break; sleep 0.1; done
[ -f "$WORK/held" ] || fail "the holding client did not connect: $(cat "$WORK/held.out")"

# Reload: old removed, home changed (readonly), new added through includedir.
sed -i '/^\[old\]/,$d' "$WORK/nbd.conf"
printf '[home]\nexportname = %s\nflush = false\nreadonly = true\n' "$WORK/home.img" > "$WORK/conf.d/home.conf"
printf '[new]\nexportname = %s\nnbdboot_description = added by SIGHUP\n' "$WORK/new.img" > "$WORK/conf.d/new.conf"
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do grep -q "configuration reloaded" "$WORK/main.log" && break; sleep 0.1; done
grep -q "SIGHUP: configuration reloaded: added 'new', changed 'home', removed 'old', unchanged 'root', 'extra'; closed 1 connection(s)" "$WORK/main.log" \
  || fail "no or wrong reload line"
touch "$WORK/reloaded"
wait "$held_pid" || fail "connections across the reload: $(cat "$WORK/held.out")"
grep -q held-ok "$WORK/held.out" || fail "the holding client did not finish: $(cat "$WORK/held.out")"

nbdinfo --list --json "$uri" > "$WORK/list2.json" || fail "nbdinfo --list after the reload failed"
python3 - "$WORK/list2.json" <<'PY' || fail "the export list after the reload is wrong: $(cat "$WORK/list2.json")"
import json, sys
ex = {e['export-name']: e for e in json.load(open(sys.argv[1]))['exports']}
assert sorted(ex) == ['extra', 'home', 'new', 'root'], sorted(ex)
assert ex['home']['is_read_only'], ex['home']
assert ex['new'].get('description') == 'added by SIGHUP', ex['new']
PY

# A bad file on reload: logged with FILE:LINE, the old configuration stays.
echo "bogus_key = 1" >> "$WORK/conf.d/new.conf"
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do grep -q "reload failed" "$WORK/main.log" && break; sleep 0.1; done
grep -q "SIGHUP: reload failed, the previous configuration stays in force: $WORK/conf.d/new.conf:4: unknown key 'bogus_key' in export \[new\]" "$WORK/main.log" \
  || fail "no or wrong line for the bad reload"
[ "$(nbdinfo --size "$uri/new")" = 1048576 ] || fail "the export 'new' is gone after a failed reload"
stop_server "$SERVER_PID"

# Bad files at start: exit 2, FILE:LINE and what to do.
check_bad() {
  local want=$1 rc=0
  "$NBDBOOT" serve -C "$WORK/bad.conf" > "$WORK/bad.txt" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "a bad config ($want) exited $rc, expected 2: $(cat "$WORK/bad.txt")"
  grep -qF -- "$want" "$WORK/bad.txt" || fail "expected '$want' in: $(cat "$WORK/bad.txt")"
}
printf '[generic]\nport = %s\n[a]\nexportname = %s\nreadonly = maybe\n' "$port" "$WORK/root.img" > "$WORK/bad.conf"
check_bad "$WORK/bad.conf:5: readonly = 'maybe' is not a boolean; write true or false"
printf '[a]\nexportname = %s\nauthfile = %s/none.allow\n' "$WORK/root.img" "$WORK" > "$WORK/bad.conf"
check_bad "$WORK/bad.conf:3: authfile $WORK/none.allow: No such file or directory"
printf '[a]\nexportname = %s\nswap = true\n' "$WORK" > "$WORK/bad.conf"
check_bad "$WORK/bad.conf:1: export [a]: a swap export needs its size"
rc=0; "$NBDBOOT" serve -C "$WORK/missing.conf" > "$WORK/bad.txt" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "missing.conf: cannot read the configuration file" "$WORK/bad.txt" || fail "a missing config: rc $rc: $(cat "$WORK/bad.txt")"

# allowlist = false (nbd-server's default): LIST is refused, GO works.
printf '[generic]\nlistenaddr = 127.0.0.1\nport = %s\n[a]\nexportname = %s\n' "$port" "$WORK/root.img" > "$WORK/nolist.conf"
start_server nolist --config "$WORK/nolist.conf"
nbdinfo --list "$uri" > "$WORK/nolist.out" 2>&1 && fail "LIST was answered with allowlist = false"
[ "$(nbdinfo --size "$uri/a")" = 2097152 ] || fail "GO failed with allowlist = false"
grep -q "LIST is disabled on this server (allowlist = false" "$WORK/nolist.log" || fail "no log line for the refused LIST"
stop_server "$SERVER_PID"

# copyonwrite = true with cowdir: per-station overlays over a base that is never written.
sum_before=$(sha256sum < "$WORK/root.img")
printf '[generic]\nlistenaddr = 127.0.0.1\nport = %s\n[root]\nexportname = %s\ncopyonwrite = true\ncowdir = %s/ov\n[swap]\nexportname = %s/swap\nswap = true\nswapsize = 1M\n' \
  "$port" "$WORK/root.img" "$WORK" "$WORK" > "$WORK/cow.conf"
start_server cow -C "$WORK/cow.conf"
"${NBDSH[@]}" -c "
a = nbd.NBD(); a.connect_uri('$uri/root@st1')
a.pwrite(b'station one', 0); a.flush(); a.shutdown()
b = nbd.NBD(); b.connect_uri('$uri/root@st1')
assert b.pread(11, 0) == b'station one'
c = nbd.NBD(); c.connect_uri('$uri/root@st2')
assert c.pread(9, 0) == b'root data', 'a second station must see the base'
s = nbd.NBD(); s.connect_uri('$uri/swap@st1')
assert s.get_size() == 1 << 20
" > "$WORK/cow.out" 2>&1 || fail "copyonwrite from the config file: $(cat "$WORK/cow.out")"
[ "$(sha256sum < "$WORK/root.img")" = "$sum_before" ] || fail "the base image of a copyonwrite export was written"
ls "$WORK/ov" | grep -q st1 || fail "no overlay for st1 in the cowdir: $(ls "$WORK/ov")"
stop_server "$SERVER_PID"
pass "config file with includedir and --export, flags keys, SIGHUP add/change/remove keeping unchanged connections, bad reload kept, bad files exit 2, allowlist, copyonwrite and swap"
