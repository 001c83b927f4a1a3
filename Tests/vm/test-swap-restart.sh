#!/usr/bin/env bash
# Issue 5, scenario (c): scenario (b) (test-swap-pressure.sh: 128 MiB of RAM,
# swap on NBD, three times the RAM in a tmpfs) with a server crash while the
# data is swapped out: when the station prints "SWAP filled", the host kills
# `nbdboot serve` (SIGKILL; it serves both the root and the swap export),
# keeps it down 15 s and restarts it on the same port. The station starts
# reading everything back at once, so swap-ins wait for the reconnect; both
# resident clients (root and swap) must reconnect and every chunk must
# verify, with no I/O or swap error and no OOM kill. Bounded: about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21300-21399}"
: "${SWAP_DOWN:=15}"
. Tests/vm/lib.sh
. Tests/vm/client-swap-lib.sh
vm_setup swap-restart
vm_load_kernel
vm_require_pieces
swap_prepare
exports=("root=$VM_WORK/root.img" "swap=$VM_WORK/swap.img")
start_nbdboot_server "${exports[@]}"
port=$VM_SERVER_PORT
log=$VM_WORK/console.log
started=$SECONDS
VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-360} boot_station "$log" \
  "nbdroot=10.0.2.2:$port/root ip=dhcp swap_port=$port swap_fill=$SWAP_FILL_MIB swap_pause=2" --memory 128M &
qpid=$!
vm_on_exit "kill $qpid 2>/dev/null"
killed=0
for ((i = 0; i < 300 * 5; i++)); do
  kill -0 "$qpid" 2>/dev/null || break
  if [ -f "$log" ] && grep -aq '^SWAP filled' "$log"; then
    kill -9 "$VM_SERVER_PID"; wait "$VM_SERVER_PID" 2>/dev/null || true; VM_SERVER_PID=""
    vm_log "server killed (SIGKILL) with the swap in use: $(grep -a '^SWAP filled' "$log" | tr -d '\r'); down for $SWAP_DOWN s"
    sleep "$SWAP_DOWN"
    VM_PORT=$port start_nbdboot_server "${exports[@]}"
    vm_log "server restarted on port $port"
    killed=1
    break
  fi
  sleep 0.2
done
wait "$qpid" || vm_log "qemu-station.sh ended with status $?"
vm_log "station done after $((SECONDS - started)) s"
fail=0
[ $killed = 1 ] || { vm_log "FAIL: the station never reported 'SWAP filled', so the server was not restarted"; fail=1; }
swap_check "$log" || fail=1
for dev in nbd0 nbd1; do
  grep -aq "nbd-client: /dev/$dev reconnected" "$log" || { vm_log "FAIL: the client of /dev/$dev did not log a reconnect"; fail=1; }
done
[ $fail = 0 ] || vm_die "swap over NBD did not survive the server restart (console: $log)"
echo "PASS: $(grep -a '^SWAP-PASS' "$log" | tr -d '\r') through a $SWAP_DOWN s server outage; root and swap reconnected ($((SECONDS - started)) s)"
