#!/usr/bin/env bash
# Records the boot working set of the boot-storm benchmark (scripts/bench.sh
# --storm): boots the demo station once, exactly as `make demo` does (same
# root image, same initramfs, same kernel), but against
#
#   nbdkit -f -i 127.0.0.1 -p PORT --filter=log file IMAGE logfile=LOG
#
# whose log filter writes one line per NBD request (nbdkit-log-filter(1)),
# and converts that log with scripts/bench-working-set.py into
# Tests/bench/boot-working-set.txt (or OUT): one "OP OFFSET LENGTH" line per
# request, in the order the station sent them, with a header that says how
# to rebuild the image it belongs to.
#
#   scripts/bench-record-boot.sh [OUT]
#
# Needs what `make demo` needs: `make build static kernel`. The image is
# scripts/make-root-image.sh IMAGE 32M with its fixed UUID, hash seed and
# SOURCE_DATE_EPOCH=0 (so a rebuild gives the same file layout, but the
# busybox and the skeleton must be the same too: their versions are in the
# header). Port: BENCH_PORT_BASE+20 (default 21520). The station is bounded
# by 180 s; nbdkit is stopped by PID on every exit path.
# Exit status: 0 when the station booted (marker seen) and the file was written.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-Tests/bench/boot-working-set.txt}
port=$((${BENCH_PORT_BASE:-21500} + 20))
image_size=32M
VM_WORK_DIR=$PWD/.build/bench/record
# shellcheck source=../Tests/vm/lib.sh
. Tests/vm/lib.sh
vm_setup bench-record
vm_load_kernel
vm_require_pieces
command -v nbdkit >/dev/null || vm_die "nbdkit is not installed (make deps)"

img=$VM_WORK/root.img
SOURCE_DATE_EPOCH=0 scripts/make-root-image.sh "$img" "$image_size" >&2
build_initramfs "$VM_WORK/initrd"
vm_port_in_use "$port" && vm_die "127.0.0.1:$port is in use: set BENCH_PORT_BASE to a free range"

log=$VM_WORK/nbdkit-requests.log
nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$port" --filter=log file "$img" logfile="$log" 2>"$VM_WORK/nbdkit.log" &
nbdkit_pid=$!
vm_on_exit "kill $nbdkit_pid 2>/dev/null; wait $nbdkit_pid 2>/dev/null"
for ((i = 0; i < 100; i++)); do
  vm_port_in_use "$port" && break   # a bare TCP connect: no NBD request reaches the log
  kill -0 "$nbdkit_pid" 2>/dev/null || vm_die "nbdkit exited at start: $(cat "$VM_WORK/nbdkit.log")"
  sleep 0.1
done

append="nbdroot=10.0.2.2:$port/root ip=dhcp"
status=0
VM_STATION_TIMEOUT=180 boot_station "$VM_WORK/console.log" "$append" || status=$?
kill "$nbdkit_pid" 2>/dev/null; wait "$nbdkit_pid" 2>/dev/null || true
[ "$status" = 0 ] || vm_die "the station's QEMU exited with status $status (console: $VM_WORK/console.log)"
expect_console "NBDBOOT-DEMO-OK root=/dev/nbd0" "$VM_WORK/console.log" || vm_die "the demo station did not boot; nothing recorded"

bytes=$(stat -c %s "$img")
bb=$(/bin/busybox 2>&1 || true); bb=${bb%%$'\n'*}; bb=${bb% multi-call binary.}
mkdir -p "$(dirname "$out")"
/usr/bin/python3 scripts/bench-working-set.py convert "$log" "$bytes" \
  "nbdboot boot working set: the NBD requests one boot of the demo station made, in the order sent." \
  "Recorded $(date -u +%Y-%m-%d) by scripts/bench-record-boot.sh (nbdkit $(nbdkit --version | cut -d' ' -f2) --filter=log file IMAGE)." \
  "Image: SOURCE_DATE_EPOCH=0 scripts/make-root-image.sh IMAGE $image_size ($bytes bytes; $bb; /sbin/init from initramfs/demo-root)." \
  "Station: scripts/qemu-station.sh (q35, 1 CPU, 512M, TCG), Debian kernel $NBDBOOT_KVER, nbdboot initramfs, append '$append'." \
  "Replay: scripts/bench-station.py (scripts/bench.sh --storm)." >"$out.tmp"
mv "$out.tmp" "$out"
/usr/bin/python3 scripts/bench-working-set.py summary "$out"
