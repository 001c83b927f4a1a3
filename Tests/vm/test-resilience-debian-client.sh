#!/usr/bin/env bash
# The side-by-side of scenario (a): the same station, root image, server and
# outages as test-resilience-restart.sh, but the initramfs carries Debian
# 12's nbd-client 3.24 (dynamically linked: the binary plus the libraries
# and loader ldd names, as Debian's initramfs hook copies them) instead of
# nbdboot's static client. nbdboot's init runs it the same way
# (HOST PORT /dev/nbd0 -N root -systemd-mark -persist); 3.24 configures the
# device by netlink and exits, with no dead-connection timeout and nothing
# left to reconnect. This test documents the difference: it passes when the
# station shows the FAILURE signature (I/O errors, a journal abort or a
# read-only remount) after the first server kill, or the other way 3.24
# loses the root: a request in flight when the server died is never failed
# (no timeout is set) and the station hangs with the socket dead and no file
# written after the kill. Bounded: about 1 minute when the errors come, the
# station timeout (200 s) when it hangs.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21300-21399}"
. Tests/vm/lib.sh
. Tests/vm/client-resilience-lib.sh
vm_setup resilience-debian-client
vm_load_kernel
vm_require_pieces
debian=/usr/sbin/nbd-client
[ -x "$debian" ] || vm_die "Debian's nbd-client is not installed at $debian (apt-get install nbd-client)"
"$debian" -h 2>&1 | grep -q 'nbd-client version 3.24' ||
  vm_log "note: $debian is not version 3.24 ($("$debian" -h 2>&1 | head -1)); the result below is for that version"

resil_build_root "$VM_WORK/root.img"
adds=()
for lib in $(ldd "$debian" | grep -o '/[^ ]*'); do adds+=(--add-file "$(readlink -f "$lib"):$lib"); done
"$NBDBOOT" initramfs build --kernel-version "$NBDBOOT_KVER" --module-root "$NBDBOOT_MODROOT" \
  --init "$NBDBOOT_STATIC/init" --nbd-client "$debian" --output "$VM_WORK/initrd" "${adds[@]}" >&2 ||
  vm_die "nbdboot initramfs build with Debian's nbd-client and its libraries failed"
VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-200}
started=$SECONDS
resil_run "$VM_WORK/initrd" "root=$VM_WORK/root.img" fail || true
log=$RESIL_LOG
vm_log "station done after $((SECONDS - started)) s, $RESIL_CYCLES_DONE restart cycles"
grep -aE -m 30 '^RESIL (verify|dmesg-error|mount|errors-seen|host-done|writer)|RESIL-' "$log" | sed 's/^/    /' >&2 || true

resil_expect "nbdboot-init: switching to /sbin/init on /dev/nbd0" "$log" ||
  vm_die "the station did not even boot with Debian's nbd-client (console: $log)"
resil_expect "RESIL writer-start" "$log" || vm_die "the writer never started (console: $log)"
if grep -aq 'nbd-client: /dev/nbd0 reconnected' "$log"; then
  vm_die "something reconnected /dev/nbd0: this station was not running Debian's client alone"
fi
signature=$(grep -aE -m 5 'I/O error|Remounting filesystem read-only|Aborting journal|EXT4-fs error' "$log" | tr -d '\r' || true)
if [ -z "$signature" ]; then
  # The hang: the kernel saw the socket die, the writer never got past the
  # file it was writing at the first kill, and the station never finished.
  dead=$(grep -aE -m 1 'Receive control failed|Dead connection' "$log" | tr -d '\r' || true)
  if [ -n "$dead" ] && ! grep -aq 'RESIL-PASS' "$log" && [ "$RESIL_CYCLES_DONE" -ge 1 ] &&
     [ -n "${RESIL_FIRST_KILL_AFTER:-}" ] &&
     [ "$(resil_last_written "$log")" -le $((RESIL_FIRST_KILL_AFTER + 1)) ]; then
    echo "    $dead"
    echo "PASS (documents the failure): Debian's nbd-client 3.24 hung the root on the first server kill (socket dead, nothing reconnects, the writer stuck at file $(resil_last_written "$log")); test-resilience-restart.sh survives the same outages with nbdboot's client"
    exit 0
  fi
  vm_die "no I/O error, no read-only remount and no hang with Debian's nbd-client: the difference this test documents is gone (console: $log)"
fi
printf '%s\n' "$signature" | sed 's/^/    /' >&2
errors=$(grep -acE 'I/O error|Remounting filesystem read-only|Aborting journal|EXT4-fs error' "$log" || true)
lost=$(grep -a -m 1 '^RESIL verify-bad' "$log" | tr -d '\r' | wc -w || true)
echo "PASS (documents the failure): Debian's nbd-client 3.24 lost the root on the first server kill ($errors error lines on the console, the first shown above; $((lost > 2 ? lost - 2 : 0)) files unreadable); test-resilience-restart.sh survives the same outages with nbdboot's client"
