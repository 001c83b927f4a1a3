#!/usr/bin/env bash
# nbdboot.toram: the init copies the whole export into a tmpfs, disconnects
# NBD (the client runs without -persist) and loop-mounts the copy. The host
# stops the server as soon as the station says it runs; the station then
# still writes, syncs and reads its root and prints TORAM-OK. A second boot
# with 128 MiB of RAM is refused with a clear message (the 64 MiB image is
# more than half of MemAvailable). Needs the loop module (--add-module loop).
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-toram
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1, $3}' /proc/mounts)"
echo "NBD0-SIZE $($bb cat /sys/block/nbd0/size)"
echo "TORAM-READY"
$bb sleep 5
$bb dd if=/dev/urandom of=/after-server-stop bs=64k count=32 2>/dev/null && $bb sync &&
  $bb cmp /after-server-stop /after-server-stop && $bb cat /bin/busybox /sbin/init >/dev/null &&
  $bb sh -c 'echo 3 > /proc/sys/vm/drop_caches' && $bb md5sum /bin/busybox >/dev/null &&
  echo "TORAM-OK $($bb ls -l /after-server-stop | $bb awk '{print $5}')"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 64M
start_nbdboot_server root="$VM_WORK/root.img"
b6_initramfs --add-module loop
port=$VM_SERVER_PORT
log=$VM_WORK/toram.log

start=$SECONDS
boot_station "$log" "nbdroot=10.0.2.2:$port/root nbdboot.toram nbdboot.fail-delay=1" &
qemu_job=$!
stopped=0
for ((i = 0; i < 600; i++)); do
  if tr -d '\r' <"$log" 2>/dev/null | grep -q TORAM-READY; then
    stop_nbdboot_server; stopped=1; vm_log "ok: the server is stopped (station said TORAM-READY after $((SECONDS - start)) s)"; break
  fi
  kill -0 "$qemu_job" 2>/dev/null || break
  sleep 0.1
done
wait "$qemu_job" || true
vm_log "-- boot toram: $((SECONDS - start)) s"
[ "$stopped" = 1 ] || { vm_log "FAIL: the station never said TORAM-READY"; B6_FAIL=1; }
b6_expect "$log" \
  "/sbin/nbd-client 10.0.2.2 $port /dev/nbd0 -N root -systemd-mark [" \
  "nbdboot-init: nbdboot.toram: copied /dev/nbd0 (64 MiB) to /run/nbdboot/ram/root.img" \
  "nbdboot-init: nbdboot.toram: disconnected /dev/nbd0" \
  "ROOT-OK /dev/loop0 ext4" "NBD0-SIZE 0" "TORAM-OK 2097152"
if tr -d '\r' <"$log" | grep -q -- '-systemd-mark -persist'; then vm_log "FAIL: toram started the client with -persist"; B6_FAIL=1; fi

start_nbdboot_server root="$VM_WORK/root.img"
start=$SECONDS
boot_station "$VM_WORK/small.log" "nbdroot=10.0.2.2:$VM_SERVER_PORT/root nbdboot.toram nbdboot.fail-delay=1" --memory 128M || true
vm_log "-- boot small: $((SECONDS - start)) s"
b6_expect "$VM_WORK/small.log" \
  "nbdboot-init: FATAL: nbdboot.toram: /dev/nbd0 holds 64 MiB, but a RAM copy may take at most half of the"
[ "$B6_FAIL" = 0 ] && echo "PASS: toram keeps running without the server"
exit "$B6_FAIL"
