# Scenario (a) of issue 5, shared by test-resilience-restart.sh (nbdboot's
# static client must survive) and test-resilience-debian-client.sh (Debian's
# nbd-client 3.24 must not): a station boots its root over NBD from
# `nbdboot serve` through a real `nbdboot initramfs build` image; the root's
# /sbin/init (below) copies busybox to a tmpfs and runs a writer from there,
# so a dead root cannot take the test's reporting down with it. The writer
# writes files of deterministic content (busybox seq), syncs each one and
# keeps its md5 in the tmpfs, printing "RESIL wrote N". Meanwhile the host
# kills the server with SIGKILL, keeps it down RESIL_DOWN seconds and
# restarts it on the same port, RESIL_CYCLES times, each time waiting until
# the station has written again. Then it opens the "done" port; the station
# sees it (busybox nc), drops its caches, verifies every file from the
# server, reports the kernel log's error lines and powers off.
#
# Sourced after Tests/vm/lib.sh. Guest output (prefix "RESIL"):
#   RESIL writer-start             the writer runs (the host starts cycling)
#   RESIL wrote N                  file N is written and synced
#   RESIL dmesg-error LINE         an error line of the kernel log
#   RESIL verify-ok N / verify-bad LIST
#   RESIL-PASS files=N             nothing went wrong
#   RESIL-FAIL reason              something did
# Kernel command line: resil_done=PORT (the done port), resil_mode=survive
# (wait for the host) or fail (stop as soon as the kernel reports errors).

: "${RESIL_CYCLES:=3}"
: "${RESIL_DOWN:=20}"

# resil_build_root OUT: a 64 MiB ext4 image with busybox and the writer.
resil_build_root() {
  local out=$1 stage
  stage=$VM_WORK/root-stage
  rm -rf "$stage"; mkdir -p "$stage"/{bin,sbin,proc,sys,dev,run,tmp,safe,data}
  install -m 755 /bin/busybox "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  cat >"$stage/sbin/init" <<'INIT'
#!/bin/busybox sh
# PID 1 on the NBD root: move to a tmpfs copy of busybox at once.
[ -e /proc/mounts ] || /bin/busybox mount -t proc proc /proc
[ -d /sys/block ] || /bin/busybox mount -t sysfs sysfs /sys
[ -e /dev/console ] || /bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t tmpfs -o size=32m tmpfs /safe
/bin/busybox cp /bin/busybox /payload.sh /safe/
/bin/busybox mkdir /safe/bin
/safe/busybox --install -s /safe/bin
exec /safe/busybox sh /safe/payload.sh
INIT
  cat >"$stage/payload.sh" <<'PAYLOAD'
# The writer, running from /safe (tmpfs) with PATH on tmpfs only.
export PATH=/safe/bin
say() { echo "RESIL $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
done_port=$(arg resil_done); mode=$(arg resil_mode)
errors() { dmesg | grep -E 'I/O error|Remounting filesystem read-only|EXT4-fs error|Aborting journal|EXT4-fs warning' ; }
say writer-start mode=$mode
start=$(cut -d. -f1 /proc/uptime)
n=0
while [ $n -lt 3000 ]; do
  n=$((n + 1))
  # 24 KiB of text that only depends on n.
  seq $((n * 1000)) $((n * 1000 + 3999)) >/safe/cur
  sum=$(md5sum </safe/cur | cut -d' ' -f1)
  if cp /safe/cur /data/f$n && sync; then
    echo "$sum  /data/f$n" >>/safe/sums
    say wrote $n
  else
    say write-failed $n
    echo "$sum  /data/f$n" >>/safe/sums
  fi
  if [ "$mode" = fail ] && [ -n "$(errors)" ]; then say errors-seen; break; fi
  if timeout 3 nc 10.0.2.2 "$done_port" </dev/null >/dev/null 2>&1; then say host-done; break; fi
  [ $(( $(cut -d. -f1 /proc/uptime) - start )) -gt 300 ] && { say writer-time-limit; break; }
done
sync
echo 3 >/proc/sys/vm/drop_caches
bad=""
while read -r sum file; do
  [ "$(timeout 30 md5sum <"$file" 2>/dev/null | cut -d' ' -f1)" = "$sum" ] || bad="$bad ${file#/data/}"
done </safe/sums
files=$(wc -l </safe/sums)
if [ -z "$bad" ]; then say verify-ok $files; else say verify-bad$bad; fi
errors | sed 's/^/RESIL dmesg-error /'
dmesg | grep -E 'nbd|nbd-client' | sed 's/^/RESIL dmesg-nbd /'
grep ' / ' /proc/mounts | sed 's/^/RESIL mount /'
if [ -z "$bad" ] && [ -z "$(errors)" ] && grep -q ' / ext4 rw' /proc/mounts; then
  echo "RESIL-PASS files=$files"
else
  echo "RESIL-FAIL files=$files bad=[${bad# }]"
fi
sync
poweroff -f
PAYLOAD
  chmod 755 "$stage/sbin/init"
  find "$stage" -exec touch -h -d @0 {} +
  mke2fs -q -F -t ext4 -d "$stage" -L resil -m 0 "$out" 64M || vm_die "mke2fs could not make $out"
}

# resil_done_listener PORT: accepts and closes connections on 127.0.0.1:PORT
# until killed (the station's "you may stop" signal). Prints its PID.
resil_done_listener() {
  python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept(); c.close()
' "$1" >/dev/null 2>&1 &
  echo $!
}

# resil_last_written LOG: the highest N of "RESIL wrote N" so far (0 if none).
resil_last_written() {
  tr -d '\r' <"$1" | sed -n 's/^RESIL wrote \([0-9]*\)$/\1/p' | tail -1 | grep . || echo 0
}

# resil_wait_console MARKER LOG SECONDS QEMU_PID: waits for MARKER (a grep -E
# pattern) on the console; fails when QEMU ends or time runs out first.
resil_wait_console() {
  local marker=$1 log=$2 limit=$3 qpid=$4 i
  for ((i = 0; i < limit * 5; i++)); do
    [ -f "$log" ] && grep -aqE -- "$marker" "$log" && return 0
    kill -0 "$qpid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# resil_expect MARKER LOG: like lib.sh's expect_console, but grep reads the
# file itself: under `set -o pipefail`, `tr <LOG | grep -q` fails with
# SIGPIPE once the log is bigger than a pipe buffer and grep stops early.
resil_expect() {
  if grep -aqF -- "$1" "$2"; then vm_log "ok: console shows '$1'"; return 0; fi
  expect_console "$1" "$2"
}

# resil_kill_server: SIGKILL, as a crash (no NBD_CMD_DISC, no clean close).
resil_kill_server() {
  [ -n "$VM_SERVER_PID" ] || return 0
  kill -9 "$VM_SERVER_PID" 2>/dev/null || true
  wait "$VM_SERVER_PID" 2>/dev/null || true
  VM_SERVER_PID=""
}

# resil_run INITRD EXPORT: boots the station, runs the kill/restart cycles
# and waits for it to power off. Sets RESIL_LOG (console), RESIL_CYCLES_DONE and
# RESIL_FIRST_KILL_AFTER (the last file written when the server was first killed).
# The station stops on its own in "fail" mode once the kernel reports errors.
resil_run() {
  local initrd=$1 export=$2 mode=$3 done_port qpid cycle before t0 lpid i
  RESIL_LOG=$VM_WORK/console.log
  RESIL_CYCLES_DONE=0
  start_nbdboot_server "$export"
  local port=$VM_SERVER_PORT
  done_port=$(vm_free_port)
  VM_INITRD=$initrd boot_station "$RESIL_LOG" \
    "nbdroot=10.0.2.2:$port/root ip=dhcp resil_done=$done_port resil_mode=$mode" &
  qpid=$!
  vm_on_exit "kill $qpid 2>/dev/null"
  resil_wait_console "^RESIL writer-start" "$RESIL_LOG" 90 "$qpid" ||
    { wait "$qpid" || true; resil_expect "RESIL writer-start" "$RESIL_LOG"; return 1; }
  t0=$SECONDS
  for ((cycle = 1; cycle <= RESIL_CYCLES; cycle++)); do
    sleep 4
    kill -0 "$qpid" 2>/dev/null || break
    before=$(resil_last_written "$RESIL_LOG")
    [ "$cycle" -eq 1 ] && RESIL_FIRST_KILL_AFTER=$before
    cp "$VM_SERVER_LOG" "$VM_WORK/server-run$cycle.log"
    resil_kill_server
    vm_log "cycle $cycle: server killed (SIGKILL) after file $before; down for $RESIL_DOWN s"
    # Down for RESIL_DOWN s, unless the station gave up meanwhile (fail mode).
    for ((i = 0; i < RESIL_DOWN * 5; i++)); do
      kill -0 "$qpid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$qpid" 2>/dev/null || { vm_log "cycle $cycle: the station stopped while the server was down"; break; }
    VM_PORT=$port start_nbdboot_server "$export"
    vm_log "cycle $cycle: server restarted on port $port"
    RESIL_CYCLES_DONE=$cycle
    # The station must write again (or, in fail mode, may stop).
    for ((i = 0; i < 150; i++)); do
      [ "$(resil_last_written "$RESIL_LOG")" -gt "$before" ] && break
      kill -0 "$qpid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$qpid" 2>/dev/null || break
    vm_log "cycle $cycle: station wrote file $(resil_last_written "$RESIL_LOG") ($((SECONDS - t0)) s since the writer started)"
  done
  lpid=$(resil_done_listener "$done_port")
  vm_on_exit "kill $lpid 2>/dev/null"
  wait "$qpid" || vm_log "qemu-station.sh ended with status $?"
  kill "$lpid" 2>/dev/null || true
}
