#!/usr/bin/env bash
# Boots one diskless nbdboot station in QEMU and waits until it powers off.
#
#   scripts/qemu-station.sh --kernel VMLINUZ --initrd INITRD --log CONSOLE.log
#       [--append "KERNEL ARGS"] [--memory 512M] [--timeout 120] [--follow]
#       [--netdev-options OPTS] [--hub-netdev TYPE,OPTS] [-- EXTRA QEMU ARGS...]
#
# Every option also reads from the environment: STATION_KERNEL,
# STATION_INITRD, STATION_LOG, STATION_APPEND, STATION_MEMORY,
# STATION_TIMEOUT (seconds), STATION_FOLLOW=1, STATION_NETDEV_OPTIONS,
# STATION_HUB_NETDEV (one).
# QEMU_SYSTEM names the emulator (default qemu-system-x86_64).
#
# The machine: q35, one CPU, TCG (KVM hangs in containers: "failed to set
# MSR 0x10a"), no display, no disk, the serial console written to the log
# file, one virtio-net NIC on QEMU's user network (guest 10.0.2.15 by DHCP,
# the host's 127.0.0.1 seen as 10.0.2.2; IPv6 on too, QEMU's default: the
# prefix fec0::/64 in router advertisements, the host's ::1 seen as
# fec0::2). --netdev-options adds to -netdev user,id=n0 (e.g. ipv6=off,
# or ipv6-prefix=2001:db8::). --hub-netdev TYPE,OPTS (repeatable) puts a
# QEMU hub between the NIC, the user network and -netdev TYPE,id=...,OPTS:
# the station's frames reach both, and frames from either reach the
# station; e.g. a test's own DHCP server on a datagram socket,
# --hub-netdev dgram,local.type=inet,local.host=127.0.0.1,local.port=P1,remote.type=inet,remote.host=127.0.0.1,remote.port=P2
# (Tests/vm/dhcp-responder.py). Without it the NIC is on the user network
# alone, as before. The kernel command line is
# "console=ttyS0 panic=-1 loglevel=4" followed by --append: with
# -no-reboot, a panic or a reboot ends QEMU at once instead of looping.
# Standard input is /dev/null (CI has none; -nographic would fail there).
#
# --follow streams the console to stdout while the station runs (the log
# file is tailed, so this works without a terminal too), each line prefixed
# with "station| ".
#
# Exit status: QEMU's (0 after a poweroff or a reboot), 124 when the timeout
# expired (QEMU is then killed), 2 on bad usage. Whether the station did its
# job is for the caller to read in the log.
set -euo pipefail
kernel=${STATION_KERNEL:-}; initrd=${STATION_INITRD:-}; log=${STATION_LOG:-}
append=${STATION_APPEND:-}; memory=${STATION_MEMORY:-512M}
timeout_s=${STATION_TIMEOUT:-120}; follow=${STATION_FOLLOW:-0}
netdev_options=${STATION_NETDEV_OPTIONS:-}
hub_netdevs=()
[ -n "${STATION_HUB_NETDEV:-}" ] && hub_netdevs+=("$STATION_HUB_NETDEV")
qemu=${QEMU_SYSTEM:-qemu-system-x86_64}
usage() {
  sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  [ -n "${1:-}" ] && echo "qemu-station.sh: $1" >&2
  exit 2
}
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=${2:-}; shift 2 ;;
    --initrd) initrd=${2:-}; shift 2 ;;
    --log) log=${2:-}; shift 2 ;;
    --append) append=${2:-}; shift 2 ;;
    --memory) memory=${2:-}; shift 2 ;;
    --timeout) timeout_s=${2:-}; shift 2 ;;
    --follow) follow=1; shift ;;
    --netdev-options) netdev_options=${2:-}; shift 2 ;;
    --hub-netdev) hub_netdevs+=("${2:-}"); shift 2 ;;
    --no-follow) follow=0; shift ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
[ -n "$kernel" ] || usage "no kernel: give --kernel VMLINUZ (scripts/kernel.sh writes NBDBOOT_VMLINUZ)"
[ -f "$kernel" ] || usage "kernel '$kernel' does not exist (run make kernel)"
[ -n "$initrd" ] || usage "no initramfs: give --initrd FILE (nbdboot initramfs build makes one)"
[ -f "$initrd" ] || usage "initramfs '$initrd' does not exist"
[ -n "$log" ] || usage "no console log: give --log FILE"
# QEMU's option parser splits on commas (a literal comma must be doubled).
[[ $log != *,* ]] || usage "console log path '$log' contains a comma, which QEMU's -serial file: cannot take"
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -gt 0 ] || usage "timeout '$timeout_s' is not a positive number of seconds"
[[ $memory =~ ^[0-9]+[MG]?$ ]] || usage "memory '$memory' is not a size like 512M or 1G"
[[ $netdev_options =~ ^[A-Za-z0-9_.:=,/-]*$ ]] || usage "netdev options '$netdev_options' are not KEY=VALUE[,KEY=VALUE...] for -netdev user"
for h in "${hub_netdevs[@]}"; do
  [[ $h =~ ^[a-z]+(,[A-Za-z0-9_.:=/-]+)*$ ]] && [[ $h != *,id=* ]] ||
    usage "hub netdev '$h' is not TYPE[,KEY=VALUE...] (without id=, which this script gives)"
done
command -v "$qemu" >/dev/null || { echo "qemu-station.sh: $qemu not found: install qemu-system-x86 (make deps)" >&2; exit 2; }

mkdir -p "$(dirname "$log")"
: >"$log"
cmdline="console=ttyS0 panic=-1 loglevel=4${append:+ $append}"
# The NIC on the user network alone, or on hub 0 with it and each --hub-netdev.
net=(-netdev "user,id=n0${netdev_options:+,$netdev_options}")
if [ ${#hub_netdevs[@]} -eq 0 ]; then
  net+=(-device virtio-net-pci,netdev=n0)
else
  net+=(-netdev hubport,id=hub0,hubid=0,netdev=n0)
  i=1
  for h in "${hub_netdevs[@]}"; do
    type=${h%%,*}; opts=${h#"$type"}
    net+=(-netdev "$type,id=x$i$opts" -netdev "hubport,id=hub$i,hubid=0,netdev=x$i")
    i=$((i + 1))
  done
  net+=(-netdev hubport,id=nic0,hubid=0 -device virtio-net-pci,netdev=nic0)
fi
qemu_pid=""; tail_pid=""
stop() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

# `timeout` sends TERM after the limit and KILL 5 s later; it exits 124 then.
timeout -k 5 "$timeout_s" "$qemu" -M q35 -m "$memory" -smp 1 -accel tcg \
  -display none -vga none -serial "file:$log" -monitor none -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
  "${net[@]}" "${extra[@]}" </dev/null &
qemu_pid=$!
if [ "$follow" = 1 ]; then
  # tail exits by itself shortly after QEMU does (--pid), after a last read.
  # sed -u (unbuffered): any buffering filter here would hold the lines back
  # and show the console in one lump at the end.
  tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$log" | sed -u 's/\r$//; s/^/station| /' &
  tail_pid=$!
fi
status=0
wait "$qemu_pid" || status=$?
qemu_pid=""
if [ -n "$tail_pid" ]; then
  wait "$tail_pid" 2>/dev/null || true
  tail_pid=""
fi
[ "$status" = 124 ] && echo "qemu-station.sh: the station did not power off within $timeout_s s; QEMU was stopped (console: $log)" >&2
exit "$status"
