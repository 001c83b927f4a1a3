#!/usr/bin/env bash
# dracut's command-line forms boot a station from `nbdboot serve`:
#   1. root=nbd:SRV:PORT:FSTYPE:FLAGS:OPTS (the default export, ext4, ro,
#      bs=4096 and timeout=30 passed to the client as -b/-t)
#   2. root=/dev/root netroot=nbd:SRV:PORT/NAME (no FSTYPE: detected)
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-dracut
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1, $3, substr($4,1,2)}' /proc/mounts)"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M -b 4096
start_nbdboot_server root="$VM_WORK/root.img"
b6_initramfs
port=$VM_SERVER_PORT

b6_boot dracut-port "root=nbd:10.0.2.2:$port:ext4:ro,noatime:bs=4096,timeout=30"
b6_expect "$VM_WORK/dracut-port.log" \
  "/sbin/nbd-client 10.0.2.2 $port /dev/nbd0 -N  -systemd-mark -persist -b 4096 -t 30" \
  "nbdboot-init: mounted /dev/nbd0 on /newroot (ext4, ro, noatime)" \
  "ROOT-OK /dev/nbd0 ext4 ro"

b6_boot dracut-netroot "root=/dev/root netroot=nbd:10.0.2.2:$port/root"
b6_expect "$VM_WORK/dracut-netroot.log" \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/root" \
  "nbdboot-init: mounted /dev/nbd0 on /newroot (ext4, rw)" \
  "ROOT-OK /dev/nbd0 ext4 rw"
[ "$B6_FAIL" = 0 ] && echo "PASS: dracut forms"
exit "$B6_FAIL"
