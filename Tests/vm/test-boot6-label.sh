#!/usr/bin/env bash
# root=LABEL= and root=UUID= on an NBD disk: the export is an MBR disk whose
# partition 1 holds an ext4 labelled "nbdboot-root". The init connects
# /dev/nbd0, has the kernel read the partition table, probes the disk and
# each partition's superblock (no libblkid), mounts the match, and gets the
# filesystem type from the superblock (no rootfstype=).
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-label
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1, $3}' /proc/mounts)"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
uuid=6a1f2c3d-4e5f-4061-8273-9485a6b7c8d9
disk=$VM_WORK/disk.img
# An MBR with one Linux partition from sector 2048 to the end of 40 MiB
# (81920 - 2048 = 79872 sectors = 0x13800), then the filesystem at 1 MiB.
truncate -s 40M "$disk"
printf '\x00\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\x38\x01\x00' | dd of="$disk" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$disk" bs=1 seek=510 conv=notrunc status=none
mke2fs -q -F -t ext4 -L nbdboot-root -U "$uuid" -E offset=1048576 -d "$VM_WORK/root" "$disk" 39M ||
  vm_die "mke2fs could not write the partition"
start_nbdboot_server disk="$disk"
b6_initramfs
port=$VM_SERVER_PORT

b6_boot label "nbdroot=10.0.2.2:$port/disk root=LABEL=nbdboot-root"
b6_expect "$VM_WORK/label.log" \
  "nbdboot-init: root LABEL=nbdboot-root is /dev/nbd0p1 (ext4)" \
  "nbdboot-init: mounted /dev/nbd0p1 on /newroot (ext4, rw)" \
  "ROOT-OK /dev/nbd0p1 ext4"

# dracut's split: netroot= names the server, root= the filesystem.
b6_boot uuid "netroot=nbd://10.0.2.2:$port/disk root=UUID=${uuid^^} ro"
b6_expect "$VM_WORK/uuid.log" \
  "nbdboot-init: root UUID=${uuid^^} is /dev/nbd0p1 (ext4)" \
  "nbdboot-init: mounted /dev/nbd0p1 on /newroot (ext4, ro)" \
  "ROOT-OK /dev/nbd0p1 ext4"

b6_boot nolabel "nbdroot=10.0.2.2:$port/disk root=LABEL=other"
b6_expect "$VM_WORK/nolabel.log" \
  "nbdboot-init: FATAL: no filesystem with LABEL=other on /dev/nbd0 or its partitions (found: /dev/nbd0: unknown; /dev/nbd0p1: ext4 LABEL=nbdboot-root UUID=$uuid)"
[ "$B6_FAIL" = 0 ] && echo "PASS: root=LABEL= and root=UUID= on a partitioned NBD disk"
exit "$B6_FAIL"
