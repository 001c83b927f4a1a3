#!/usr/bin/env bash
# Issue 5, scenario (a): a station whose root is on NBD (nbdboot serve,
# nbdboot's initramfs, static init and static nbd-client -persist) keeps
# writing while its server is killed with SIGKILL, left down 20 s and
# restarted on the same port, three times. Passes when the station saw no
# I/O error, no journal abort and no read-only remount, every file it wrote
# verifies after its caches are dropped, and its client logged the
# reconnects. Bounded: about 2.5 minutes (boot, 3 x (4 s + 20 s + resume)).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21300-21399}"
. Tests/vm/lib.sh
. Tests/vm/client-resilience-lib.sh
vm_setup resilience-restart
vm_load_kernel
vm_require_pieces
resil_build_root "$VM_WORK/root.img"
build_initramfs "$VM_WORK/initrd"
VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-300}
started=$SECONDS
resil_run "$VM_WORK/initrd" "root=$VM_WORK/root.img" survive || true
log=$RESIL_LOG
vm_log "station done after $((SECONDS - started)) s, $RESIL_CYCLES_DONE restart cycles"
tr -d '\r' <"$log" | grep -E '^RESIL (verify|dmesg-error|mount|host-done|writer)|RESIL-|nbd-client:' | sed 's/^/    /' >&2 || true

fail=0
[ "$RESIL_CYCLES_DONE" = "$RESIL_CYCLES" ] || { vm_log "FAIL: only $RESIL_CYCLES_DONE of $RESIL_CYCLES restart cycles ran"; fail=1; }
resil_expect "RESIL host-done" "$log" || fail=1
resil_expect "RESIL-PASS" "$log" || fail=1
reconnects=$(grep -ac 'nbd-client: /dev/nbd0 reconnected' "$log" || true)
[ "$reconnects" -ge "$RESIL_CYCLES" ] || { vm_log "FAIL: the client logged $reconnects reconnects, expected $RESIL_CYCLES"; fail=1; }
if grep -aE 'I/O error|Remounting filesystem read-only|EXT4-fs error|Kernel panic' "$log"; then
  vm_log "FAIL: the console shows the errors above"; fail=1
fi
[ $fail = 0 ] || vm_die "the station did not survive the server restarts (console: $log)"
echo "PASS: root on NBD survived $RESIL_CYCLES server kills of $RESIL_DOWN s ($reconnects reconnects, $(tr -d '\r' <"$log" | sed -n 's/^RESIL-PASS files=//p') files verified)"
