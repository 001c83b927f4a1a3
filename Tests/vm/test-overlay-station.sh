#!/usr/bin/env bash
# Per-station copy-on-write root in QEMU: the demo root image (whose
# /sbin/init counts its boots in /var/lib/nbdboot-demo/boot-count) is served
# as a cow export. Station st1 boots with nbdroot=10.0.2.2:PORT/root@st1 and
# counts 1; the server is restarted; st1 boots again and counts 2 (its write
# survived a power-off and a server restart); st2 boots and counts 1 (it sees
# the pristine base); the base image's sha256 never changes; `nbdboot overlay
# commit st1` gives an image whose boot-count is 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
export VM_PORT_RANGE=${VM_PORT_RANGE:-21200-21299}
. Tests/vm/lib.sh
vm_setup overlay-station
vm_load_kernel
vm_require_pieces
command -v debugfs >/dev/null || vm_die "debugfs not found: install e2fsprogs"

img=$VM_WORK/root.img
scripts/make-root-image.sh "$img" 32M >&2 || vm_die "scripts/make-root-image.sh failed"
base_sum=$(sha256sum <"$img")
build_initramfs "$VM_WORK/initrd"

boot() {  # boot STATION RUN EXPECTED_COUNT
  local station=$1 run=$2 count=$3 log=$VM_WORK/console-$1-$2.log
  local append="nbdroot=10.0.2.2:$VM_SERVER_PORT/root@$station ip=dhcp"
  vm_log "booting $station (run $run): $append"
  boot_station "$log" "$append" || vm_die "station $station (run $run) did not finish (exit $?); console $log"
  expect_console "NBDBOOT-DEMO-OK root=/dev/nbd0" "$log" || vm_die "station $station (run $run) did not boot its root"
  expect_console "this image has now booted $count time(s)" "$log" ||
    vm_die "station $station (run $run) should count boot $count"
  [ "$(sha256sum <"$img")" = "$base_sum" ] || vm_die "the base image changed after $station's boot $run"
}

start_nbdboot_server "root=$img,cow"
port=$VM_SERVER_PORT
boot st1 1 1
stop_nbdboot_server
VM_PORT=$port start_nbdboot_server "root=$img,cow"
boot st1 2 2
boot st2 1 1
stop_nbdboot_server

"$NBDBOOT" overlay list --overlays "$img.overlays" >&2 || vm_die "overlay list failed"
"$NBDBOOT" overlay commit st1 --overlays "$img.overlays" --output "$VM_WORK/st1.img" >&2 || vm_die "overlay commit st1 failed"
count=$(vm_image_file "$VM_WORK/st1.img" /var/lib/nbdboot-demo/boot-count)
[ "$count" = 2 ] || vm_die "the committed image of st1 has boot-count '$count', expected 2"
[ "$(vm_image_file "$img" /var/lib/nbdboot-demo/boot-count)" = "" ] || vm_die "the base image has a boot-count file"
echo "PASS: st1 kept its writes across a power-off and a server restart (count 1, 2), st2 saw the pristine base (count 1), base unchanged, commit has count 2"
