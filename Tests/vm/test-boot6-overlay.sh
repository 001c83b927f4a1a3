#!/usr/bin/env bash
# nbdboot.overlay=tmpfs: a read-only export (the server refuses writes)
# mounted read-only under an overlayfs with a tmpfs upper layer. The
# station writes a file and sees / as overlay; the next boot does not see
# that file; the image's sha256 on the host never changes. The image needs
# the overlay module (--add-module overlay).
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-overlay
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1, $3}' /proc/mounts)"
echo "LOWER $($bb awk '$2=="/run/nbdboot/lower"{print $1, $3, substr($4,1,2)}' /proc/mounts)"
if [ -e /written-by-station ]; then echo "SAW-OLD-WRITE"; else echo "NO-OLD-WRITE"; fi
$bb dd if=/dev/urandom of=/written-by-station bs=64k count=16 2>/dev/null && $bb sync && echo "WROTE-OK"
$bb rm -f /bin/busybox.copy; $bb cp /bin/busybox /bin/busybox.copy && echo "COPY-OK"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
before=$(sha256sum <"$VM_WORK/root.img")
start_nbdboot_server "root=$VM_WORK/root.img,readonly"
b6_initramfs --add-module overlay
port=$VM_SERVER_PORT

for boot in 1 2; do
  b6_boot overlay$boot "nbdroot=10.0.2.2:$port/root nbdboot.overlay=tmpfs"
  b6_expect "$VM_WORK/overlay$boot.log" \
    "nbdboot-init: mounted /dev/nbd0 (ext4, ro) on /run/nbdboot/lower and overlayfs on /newroot" \
    "nbdboot-init: switching to /sbin/init on overlay of /dev/nbd0 (ext4, ro) + tmpfs" \
    "ROOT-OK overlay overlay" "LOWER /dev/nbd0 ext4 ro" "NO-OLD-WRITE" "WROTE-OK" "COPY-OK"
done
after=$(sha256sum <"$VM_WORK/root.img")
if [ "$before" = "$after" ]; then vm_log "ok: the base image is unchanged ($before)"; else
  vm_log "FAIL: the base image changed: $before -> $after"; B6_FAIL=1; fi
[ "$B6_FAIL" = 0 ] && echo "PASS: read-only base + tmpfs overlay"
exit "$B6_FAIL"
