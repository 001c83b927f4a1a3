#!/usr/bin/env bash
# A root image that the project did not make: an ext4 image whose only
# program is /sbin/init, a static C binary (initramfs/foreign-init/init.c)
# that prints `FOREIGN-ROOT-OK root=/dev/nbd0` and powers off. It boots
# through `nbdboot initramfs build` + `nbdboot serve` under the export name
# "debian-lab". The same server also exports the demo image as "root": the
# test fails if the station boots that one (wrong export chosen) or if the
# foreign init never prints its line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. Tests/vm/lib.sh
vm_setup boot-foreign-root
vm_load_kernel
vm_require_pieces

# The foreign root: /sbin/init and the empty mount points, nothing else.
stage=$VM_WORK/foreign-root
mkdir -p "$stage"/{sbin,dev,proc,sys,tmp}
vm_compile_static "$stage/sbin/init" initramfs/foreign-init/init.c
foreign=$VM_WORK/debian-lab.img
: >"$foreign"
mke2fs -q -F -t ext4 -d "$stage" -L debian-lab "$foreign" 8M || vm_die "mke2fs could not make $foreign from $stage"
decoy=$VM_WORK/root.img
scripts/make-root-image.sh "$decoy" 32M >/dev/null

build_initramfs "$VM_WORK/initrd"
start_nbdboot_server "root=$decoy" "debian-lab=$foreign"
console=$VM_WORK/console.log
status=0
boot_station "$console" "nbdroot=10.0.2.2:$VM_SERVER_PORT/debian-lab ip=dhcp" || status=$?
stop_nbdboot_server

expect_console "FOREIGN-ROOT-OK root=/dev/nbd0 pid=1" "$console"
if tr -d '\r' <"$console" | grep -qF "NBDBOOT-DEMO-"; then
  vm_die "the station ran the demo image's init: the server or the client chose export 'root', not 'debian-lab'"
fi
[ "$status" = 0 ] || vm_die "QEMU exited with status $status after the foreign init ran (124: it did not power off)"
echo "PASS: a static foreign /sbin/init booted from export debian-lab over NBD"
