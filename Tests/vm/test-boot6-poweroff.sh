#!/usr/bin/env bash
# A clean poweroff that disconnects NBD. Before switch_root the init copies
# itself to /run/initramfs/shutdown; the root's /sbin/init here does what
# systemd-shutdown does at its end (src/shutdown/shutdown.c,
# switch_root_initramfs): bind /run/initramfs onto itself, pivot_root into
# it with the old root on /oldroot, and exec /shutdown poweroff. The init,
# started as "shutdown", unmounts /oldroot, syncs, disconnects /dev/nbd0 and
# powers off. The host then finds: the file the station wrote just before,
# a DISC in the server's log, and an ext4 that is clean with no
# needs_recovery (no journal replay at the next boot).
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-poweroff
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1, $3}' /proc/mounts)"
echo "written just before poweroff" > /poweroff-note
$bb dd if=/dev/urandom of=/poweroff-data bs=64k count=16 2>/dev/null
$bb ls -l /run/initramfs/shutdown /run/initramfs/sbin/nbd-client | $bb awk '{print "HANDOVER", $1, $NF}'
$bb mount --bind /run/initramfs /run/initramfs
cd /run/initramfs
$bb mkdir -p oldroot
$bb pivot_root . oldroot || { echo "PIVOT-FAILED"; $bb poweroff -f; }
exec /oldroot/bin/busybox chroot . /shutdown poweroff
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
start_nbdboot_server root="$VM_WORK/root.img"
b6_initramfs
port=$VM_SERVER_PORT

b6_boot poweroff "nbdroot=10.0.2.2:$port/root"
b6_expect "$VM_WORK/poweroff.log" \
  "ROOT-OK /dev/nbd0 ext4" "HANDOVER -rwxr-xr-x /run/initramfs/shutdown" \
  "nbdboot-init: shutdown: poweroff: unmounting /oldroot, disconnecting NBD" \
  "nbdboot-init: shutdown: unmounted 5 filesystems at and below /oldroot" \
  "nbdboot-init: shutdown: disconnected /dev/nbd0; poweroff now" \
  "reboot: Power down"
if tr -d '\r' <"$VM_WORK/poweroff.log" | grep -a 'was busy'; then vm_log "FAIL: a mount was busy at shutdown"; B6_FAIL=1; fi
stop_nbdboot_server
if grep -q "conn 1: DISC" "$VM_SERVER_LOG"; then vm_log "ok: the server logged the station's DISC: $(grep 'conn 1: DISC' "$VM_SERVER_LOG")"; else
  vm_log "FAIL: no DISC in the server log:"; sed 's/^/    /' "$VM_SERVER_LOG" >&2; B6_FAIL=1; fi
state=$(dumpe2fs -h "$VM_WORK/root.img" 2>/dev/null | grep -E '^Filesystem (state|features):')
vm_log "$state"
if grep -q 'state: *clean$' <<<"$state" && ! grep -q needs_recovery <<<"$state"; then vm_log "ok: the ext4 is clean, no journal recovery pending"; else
  vm_log "FAIL: the ext4 was not left clean"; B6_FAIL=1; fi
[ "$(vm_image_file "$VM_WORK/root.img" /poweroff-note)" = "written just before poweroff" ] &&
  vm_log "ok: the last write reached the image" || { vm_log "FAIL: /poweroff-note is not in the image"; B6_FAIL=1; }
[ "$B6_FAIL" = 0 ] && echo "PASS: clean poweroff through /run/initramfs/shutdown"
exit "$B6_FAIL"
