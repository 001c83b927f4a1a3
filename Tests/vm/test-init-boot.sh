#!/usr/bin/env bash
# The static init boots a QEMU station to the root image's /sbin/init over
# NBD: once with DHCP (slirp gives 10.0.2.15, server 10.0.2.2), once with a
# static ip=. Checks the root is /dev/nbd0, mounted read-write, the net conf
# was written, and the initramfs files were deleted by the switch.
. "$(dirname "$0")/init-lib.sh"
init_setup 0
init_build_initramfs "$work/initrd.gz" nodes
init_build_root "$work/root.img"
init_serve "$work/root.img"
fail=0

echo "== boot 1: ip=dhcp"
init_boot "$work/initrd.gz" "$work/dhcp.log" "nbdroot=10.0.2.2:$port/root ip=dhcp"
expect_lines "$work/dhcp.log" \
  "nbdboot-init: DHCP: 10.0.2.15 from 10.0.2.2" \
  "nbdboot-init: switching to /sbin/init on /dev/nbd0 (ext4, rw)" \
  "ROOT-OK /dev/nbd0" "ROOT-RW" "IPV4ADDR='10.0.2.15'" "ROOTSERVER='10.0.2.2'" \
  "ROOT-LEFT .*No such file.*No such file" || fail=1

echo "== boot 2: static ip=, ro"
init_boot "$work/initrd.gz" "$work/static.log" \
  "nbdroot=10.0.2.2:$port/root ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off ro"
expect_lines "$work/static.log" \
  "nbdboot-init: network (static): eth0 10.0.2.15/255.255.255.0 gw 10.0.2.2" \
  "nbdboot-init: switching to /sbin/init on /dev/nbd0 (ext4, ro)" \
  "ROOT-OK /dev/nbd0" "ROOT-RO" "PROTO='none'" || fail=1
echo "== boot 3: nbdroot=:PORT/NAME takes the host from DHCP (siaddr); nbdboot.debug"
init_boot "$work/initrd.gz" "$work/dhcphost.log" "nbdroot=:$port/root root=/dev/nbd0 nbdboot.debug"
expect_lines "$work/dhcphost.log" \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/root" \
  "nbdboot-init: loaded module nbd max_part=15" \
  "nbdboot-init: module crc32c-intel (/lib/modules/.*) does not apply to this machine: errno 19" \
  "nbdboot-init: DHCP: OFFER of 10.0.2.15 from 10.0.2.2" \
  "ROOT-OK /dev/nbd0" || fail=1
exit $fail
