#!/usr/bin/env bash
# root=/dev/nbd0p1: the init connects /dev/nbd0, has the kernel read its
# partition table (there is no udev to open the disk) and mounts partition 1.
. "$(dirname "$0")/init-lib.sh"
init_setup 30
init_build_initramfs "$work/initrd.gz" nodes
init_build_root "$work/disk.img" partitioned
init_serve "$work/disk.img"
init_boot "$work/initrd.gz" "$work/part.log" "nbdroot=10.0.2.2:$port/disk root=/dev/nbd0p1 nbdboot.fail-delay=0"
expect_lines "$work/part.log" \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/disk" \
  "nbdboot-init: mounted /dev/nbd0p1 on /newroot (ext4, rw)" \
  "nbdboot-init: switching to /sbin/init on /dev/nbd0p1 (ext4, rw)" \
  "ROOT-OK /dev/nbd0p1" "ROOT-RW"
