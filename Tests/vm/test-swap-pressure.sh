#!/usr/bin/env bash
# Issue 5, scenario (b): a station with 128 MiB of RAM, root on NBD, swap on
# a second NBD export attached by the static client with -swap -persist,
# fills a tmpfs with three times its RAM of deterministic data and reads it
# all back intact. Also checks the swap device's resident client locked
# itself in memory (VmLck > 0) with oom_score_adj -1000, and that the kernel
# logged no I/O or swap error and no OOM kill. Bounded: about 2-3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21300-21399}"
. Tests/vm/lib.sh
. Tests/vm/client-swap-lib.sh
vm_setup swap-pressure
vm_load_kernel
vm_require_pieces
swap_prepare
start_nbdboot_server "root=$VM_WORK/root.img" "swap=$VM_WORK/swap.img"
started=$SECONDS
VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-300} boot_station "$VM_WORK/console.log" \
  "nbdroot=10.0.2.2:$VM_SERVER_PORT/root ip=dhcp swap_port=$VM_SERVER_PORT swap_fill=$SWAP_FILL_MIB" --memory 128M ||
  vm_log "qemu-station.sh ended with status $?"
vm_log "station done after $((SECONDS - started)) s"
swap_check "$VM_WORK/console.log" || vm_die "swap over NBD under memory pressure failed (console: $VM_WORK/console.log)"
echo "PASS: $(grep -a '^SWAP-PASS' "$VM_WORK/console.log" | tr -d '\r') on a 128 MiB station ($((SECONDS - started)) s)"
