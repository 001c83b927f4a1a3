#!/usr/bin/env bash
# nbdboot's demo (`make demo`, which builds nbdboot, the static station
# binaries and fetches the kernel first): a diskless QEMU station boots its
# root filesystem over NBD from nbdboot's own server, through an initramfs
# that nbdboot generated around its static init and static nbd-client.
#
#   scripts/demo.sh [--no-follow] [--port PORT] [--timeout SECONDS]
#
#   --no-follow   do not stream the station's console (it is still in the log)
#   --port PORT   the server's port (default: 10809, NBD's IANA port, when
#                 free, else a free one of VM_PORT_RANGE); env DEMO_PORT
#   --timeout S   bound on the station's run (default 120); env DEMO_TIMEOUT
#   DEMO_WORK     the work dir (default .build/demo)
#
# Steps: the kernel (scripts/kernel.sh), a root image (scripts/make-root-image.sh),
# the initramfs (`nbdboot initramfs build`), the server (`nbdboot serve`),
# the station (scripts/qemu-station.sh with `nbdroot=10.0.2.2:PORT/root
# ip=dhcp`). It passes when the console shows `NBDBOOT-DEMO-OK root=/dev/nbd0`
# (printed by the image's own /sbin/init) and the file that init wrote is in
# the image on the host. Everything lands in .build/demo/ and stays there
# for reading; the server is stopped by PID on every exit path.
# Exit status: 0 when the station booted from NBD, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
follow=1; port=${DEMO_PORT:-}; timeout_s=${DEMO_TIMEOUT:-120}
while [ $# -gt 0 ]; do
  case $1 in
    --no-follow) follow=0; shift ;;
    --follow) follow=1; shift ;;
    --port) port=${2:-}; shift 2 ;;
    --timeout) timeout_s=${2:-}; shift 2 ;;
    -h|--help) sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (use --no-follow, --port PORT, --timeout SECONDS)" >&2; exit 2 ;;
  esac
done
[ -z "$port" ] || [[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || { echo "demo.sh: port '$port' is not a number in 1-65535" >&2; exit 2; }

VM_WORK_DIR=${DEMO_WORK:-$PWD/.build/demo}
# shellcheck source=../Tests/vm/lib.sh
. Tests/vm/lib.sh
vm_setup demo
demo_start=$(date +%s%N)
marker="NBDBOOT-DEMO-OK root=/dev/nbd0"
if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; else bold=""; plain=""; fi
step() { printf '\n%s[%s] %s%s\n' "$bold" "$1" "$2" "$plain"; }
show() { printf '  $ %s\n' "$*"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $((($1 % 1000) / 100)); }

echo "nbdboot demo: a diskless QEMU station boots its root filesystem over NBD"
echo "from nbdboot's own server, static init and static nbd-client."

step 1/5 "kernel"
vm_load_kernel
vm_require_pieces
echo "  Debian kernel $NBDBOOT_KVER: $NBDBOOT_VMLINUZ"

step 2/5 "root filesystem image (ext4, busybox, an /sbin/init that proves where it runs)"
img=$VM_WORK/root.img
show scripts/make-root-image.sh "$img" 32M
scripts/make-root-image.sh "$img" 32M | sed 's/^/  /'

step 3/5 "initramfs (nbdboot's static init + static nbd-client + kernel modules)"
initrd=$VM_WORK/initrd
show "$NBDBOOT" initramfs build --kernel-version "$NBDBOOT_KVER" --module-root "$NBDBOOT_MODROOT" \
  --init "$NBDBOOT_STATIC/init" --nbd-client "$NBDBOOT_STATIC/nbd-client" --output "$initrd"
build_initramfs "$initrd" 2>&1 | sed 's/^/  /'
[ -s "$initrd" ] || vm_die "no initramfs at $initrd"
echo "  $initrd: $(stat -c %s "$initrd") bytes"

step 4/5 "NBD server"
# NBD's IANA port when free; --port insists on its port.
if [ -n "$port" ]; then
  vm_port_in_use "$port" && vm_die "port $port is in use: pick another with --port PORT, or leave --port out"
  VM_PORT=$port
else
  VM_PREFERRED_PORT=$(vm_free_port 10809)   # start_nbdboot_server moves on if it is taken meanwhile
fi
show "$NBDBOOT" serve --listen "127.0.0.1:${VM_PORT:-$VM_PREFERRED_PORT}" --export "root=$img"
VM_FOLLOW_SERVER=$follow start_nbdboot_server "root=$img"
echo "  listening on 127.0.0.1:$VM_SERVER_PORT (PID $VM_SERVER_PID); the station reaches it as 10.0.2.2:$VM_SERVER_PORT"

step 5/5 "station (QEMU, no disk: its root is /dev/nbd0)"
append="nbdroot=10.0.2.2:$VM_SERVER_PORT/root ip=dhcp"
console=$VM_WORK/console.log
follow_arg=(); [ "$follow" = 1 ] && follow_arg=(--follow)
show scripts/qemu-station.sh --kernel "$NBDBOOT_VMLINUZ" --initrd "$initrd" --log "$console" \
  --append "\"$append\"" --timeout "$timeout_s" "${follow_arg[@]}"
[ "$follow" = 1 ] && echo "  (the kernel boots with loglevel=4, so the first lines are nbdboot-init's, after a few seconds)"
watcher=$(vm_watch_marker "$marker" "$console" "$VM_WORK/marker-ms" "$timeout_s")
vm_on_exit "kill $watcher 2>/dev/null"
station_status=0
VM_STATION_TIMEOUT=$timeout_s boot_station "$console" "$append" "${follow_arg[@]}" || station_status=$?
sleep 0.3 # let the watcher see the last lines
stop_nbdboot_server
echo

ok=1
[ "$station_status" = 0 ] || { vm_log "the station's QEMU exited with status $station_status$([ "$station_status" = 124 ] && echo " (timeout after $timeout_s s)")"; ok=0; }
expect_console "$marker" "$console" || ok=0
# The station's init wrote this file over NBD: read it back from the image.
written=$(vm_image_file "$img" /nbdboot-demo-write-test || true)
if [ -n "$written" ] && tr -d '\r' <"$console" | grep -qF -- "$written"; then
  echo "ok: the image on the host holds what the station wrote: /nbdboot-demo-write-test = '$written'"
else
  vm_log "FAIL: /nbdboot-demo-write-test in $img is '${written:-<missing>}', not what the station printed"
  ok=0
fi
[ "$ok" = 1 ] || { vm_log "demo FAILED (work dir: $VM_WORK: console.log, server.log)"; exit 1; }

boot_ms=$(cat "$VM_WORK/marker-ms" 2>/dev/null || echo "")
guest_s=$(tr -d '\r' <"$console" | sed -n 's/^\[ *\([0-9.]*\)\] reboot: Power down.*/\1/p' | tail -1)
echo
echo "== nbdboot demo passed"
boot_text=unknown; [ -n "$boot_ms" ] && boot_text=$(secs "$boot_ms")
printf '  %-34s %s\n' "station boot, QEMU start -> marker:" "$boot_text (wall clock, TCG)"
[ -n "$guest_s" ] && printf '  %-34s %s s\n' "guest uptime at power-off:" "$guest_s"
printf '  %-34s %s\n' "whole demo:" "$(secs "$(ms_since "$demo_start")")"
printf '  %-34s %s\n' "root image:" "$img, $(du -h --apparent-size "$img" | cut -f1) ($(du -h "$img" | cut -f1) allocated)"
printf '  %-34s %s\n' "initramfs:" "$initrd, $(du -h --apparent-size "$initrd" | cut -f1)"
printf '  %-34s %s\n' "console log:" "$console"
printf '  %-34s %s\n' "server log:" "$VM_SERVER_LOG"
