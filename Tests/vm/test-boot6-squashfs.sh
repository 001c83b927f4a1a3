#!/usr/bin/env bash
# A squashfs root image (what LTSP and live systems serve): no rootfstype=,
# the init's superblock probe says squashfs; mounted read-only directly,
# and writable under nbdboot.overlay=tmpfs. Needs mksquashfs on the host
# (Debian package squashfs-tools) and the squashfs and overlay modules.
. "$(dirname "$0")/init-lib.sh"
if ! command -v mksquashfs >/dev/null; then
  # make test installs squashfs-tools (scripts/deps.sh): missing it is a failure, not a skip.
  echo "FAIL: mksquashfs is missing (apt-get install squashfs-tools, or run scripts/deps.sh)"
  exit 1
fi
b6_setup boot6-squashfs
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1, $3, substr($4,1,2)}' /proc/mounts)"
if $bb touch /probe-write 2>/dev/null; then echo "ROOT-WRITABLE"; else echo "ROOT-READONLY"; fi
$bb poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
mksquashfs "$VM_WORK/root" "$VM_WORK/root.sqfs" -comp zstd -all-root -noappend -quiet >/dev/null ||
  vm_die "mksquashfs could not build the image"
start_nbdboot_server "root=$VM_WORK/root.sqfs,readonly"
b6_initramfs --add-module squashfs --add-module overlay
port=$VM_SERVER_PORT

b6_boot direct "nbdroot=10.0.2.2:$port/root"
b6_expect "$VM_WORK/direct.log" \
  "nbdboot-init: /dev/nbd0 holds squashfs, which is read-only (nbdboot.overlay=tmpfs gives a writable root)" \
  "nbdboot-init: mounted /dev/nbd0 on /newroot (squashfs, ro)" \
  "ROOT-OK /dev/nbd0 squashfs ro" "ROOT-READONLY"

b6_boot overlay "nbdroot=10.0.2.2:$port/root nbdboot.overlay=tmpfs"
b6_expect "$VM_WORK/overlay.log" \
  "nbdboot-init: mounted /dev/nbd0 (squashfs, ro) on /run/nbdboot/lower and overlayfs on /newroot" \
  "ROOT-OK overlay overlay rw" "ROOT-WRITABLE"
[ "$B6_FAIL" = 0 ] && echo "PASS: squashfs root, detected, read-only and under a tmpfs overlay"
exit "$B6_FAIL"
