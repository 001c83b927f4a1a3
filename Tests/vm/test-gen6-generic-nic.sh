#!/usr/bin/env bash
# The generic-nic profile boots a PC whose NIC is not virtio: QEMU with an Intel e1000
# (-device e1000, driver kernel/drivers/net/ethernet/intel/e1000) and NO virtio-net, an image
# from `nbdboot initramfs build --profile generic-nic` (every Ethernet driver), nbdboot's static
# init and client, the demo root from `nbdboot serve`. The station must reach the root's
# /sbin/init (NBDBOOT-DEMO-OK root=/dev/nbd0); the init's module summary is printed.
# lz4 keeps the 41 MB archive's build short; the kernel unpacks it (CONFIG_RD_LZ4).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21600-21699}"
. Tests/vm/lib.sh
vm_setup gen6-generic-nic
vm_load_kernel; vm_require_pieces

build_initramfs "$VM_WORK/initrd" --profile generic-nic --compress lz4
scripts/make-root-image.sh "$VM_WORK/root.img" 32M >/dev/null
start_nbdboot_server root="$VM_WORK/root.img"
log=$VM_WORK/console.log
status=0
timeout -k 5 "${VM_STATION_TIMEOUT:-180}" qemu-system-x86_64 -M q35 -m 512 -smp 1 -accel tcg \
  -display none -vga none -serial "file:$log" -monitor none -no-reboot \
  -kernel "$NBDBOOT_VMLINUZ" -initrd "$VM_WORK/initrd" \
  -append "console=ttyS0 panic=-1 loglevel=4 nbdroot=10.0.2.2:$VM_SERVER_PORT/root ip=dhcp" \
  -netdev user,id=n0 -device e1000,netdev=n0 </dev/null || status=$?
stop_nbdboot_server
tr -d '\r' < "$log" | grep -E 'nbdboot-init: (loaded|network|/dev/nbd0 connected)' >&2 || true
expect_console "NBDBOOT-DEMO-OK root=/dev/nbd0" "$log"
[ "$status" = 0 ] || vm_die "QEMU exited with status $status (124: the station did not power off)"
echo "PASS: the generic-nic image booted an e1000 station from NBD ($(stat -c %s "$VM_WORK/initrd") bytes, lz4)"
