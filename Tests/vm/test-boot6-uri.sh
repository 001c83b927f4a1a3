#!/usr/bin/env bash
# NBD URIs, BOOTIF= and nbdswap=: nbdroot=nbd://10.0.2.2:PORT/root boots
# the root; BOOTIF= names QEMU's NIC by its MAC; nbdswap=nbd://.../swap
# connects /dev/nbd1 with -swap, writes a swap header on the fresh (all
# zero) export and swaps on it before switch_root; the second boot finds
# the header and reuses the area.
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-uri
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
echo "SWAPS $(/bin/busybox awk 'NR>1{print $1, $2}' /proc/swaps)"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
truncate -s 16M "$VM_WORK/swap.img"
start_nbdboot_server root="$VM_WORK/root.img" swap="$VM_WORK/swap.img"
b6_initramfs
port=$VM_SERVER_PORT
mac=52-54-00-12-34-56   # QEMU's default for the first NIC

b6_boot uri1 "nbdroot=nbd://10.0.2.2:$port/root BOOTIF=01-$mac nbdswap=nbd://10.0.2.2:$port/swap"
b6_expect "$VM_WORK/uri1.log" \
  "nbdboot-init: BOOTIF=52:54:00:12:34:56 is eth0" \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/root" \
  "/sbin/nbd-client 10.0.2.2 $port /dev/nbd1 -N swap -systemd-mark -persist -swap" \
  "nbdboot-init: nbdswap: wrote a swap header on /dev/nbd1 (16 MiB" \
  "nbdboot-init: nbdswap: swap on /dev/nbd1 (16 MiB)" \
  "ROOT-OK /dev/nbd0" "SWAPS /dev/nbd1 partition"
[ "$(dd if="$VM_WORK/swap.img" bs=1 skip=4086 count=10 status=none)" = SWAPSPACE2 ] ||
  { vm_log "FAIL: swap.img has no SWAPSPACE2 signature on the host"; B6_FAIL=1; }

b6_boot uri2 "root=nbd://10.0.2.2:$port/root nbdswap=nbd:10.0.2.2:$port/swap"
b6_expect "$VM_WORK/uri2.log" \
  "nbdboot-init: nbdswap: /dev/nbd1 already holds a swap area (UUID=" \
  "ROOT-OK /dev/nbd0" "SWAPS /dev/nbd1 partition"
[ "$B6_FAIL" = 0 ] && echo "PASS: NBD URIs, BOOTIF=, nbdswap="
exit "$B6_FAIL"
