#!/usr/bin/env bash
# The demo, non-interactive: scripts/demo.sh --no-follow must boot a QEMU
# station from nbdboot's server, initramfs, static init and static
# nbd-client. Fails unless the console shows, in this order, nbdboot's init
# switching to /sbin/init on /dev/nbd0 and the demo root's own /sbin/init
# printing `NBDBOOT-DEMO-OK root=/dev/nbd0`, and unless the file that init
# wrote over NBD is in the image on the host (demo.sh checks that).
set -euo pipefail
cd "$(dirname "$0")/../.."
. Tests/vm/lib.sh
vm_setup boot-demo
work=$VM_WORK/demo
port=$(vm_free_port)
DEMO_WORK=$work scripts/demo.sh --no-follow --port "$port" --timeout "${VM_STATION_TIMEOUT:-120}" ||
  vm_die "scripts/demo.sh failed (exit $?); work dir $work"

console=$work/console.log
expect_console "NBDBOOT-DEMO-OK root=/dev/nbd0" "$console"
expect_console "nbdboot-init: switching to /sbin/init on /dev/nbd0" "$console"
switch_line=$(tr -d '\r' <"$console" | grep -nF "nbdboot-init: switching to /sbin/init on /dev/nbd0" | head -1 | cut -d: -f1)
marker_line=$(tr -d '\r' <"$console" | grep -nF "NBDBOOT-DEMO-OK root=/dev/nbd0" | head -1 | cut -d: -f1)
[ "$switch_line" -lt "$marker_line" ] ||
  vm_die "the marker (line $marker_line) came before nbdboot-init switched roots (line $switch_line): it was not printed by the NBD root's /sbin/init"
echo "PASS: the station booted its root from NBD and ran the image's /sbin/init"
