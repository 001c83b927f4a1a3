#!/usr/bin/env bash
# The static nbd-client inside a QEMU station: netlink connect, -c, mount and
# read, -d; the same through ioctls (-nonetlink); read-only; and -persist
# -systemd-mark across a server crash and a server freeze. The initramfs is built by hand here
# (busybox-static, the modules, our client, Tests/vm/client-guest-init.sh as
# /init); the guest prints "CLIENTTEST <marker>" lines on its serial console.
set -euo pipefail
cd "$(dirname "$0")/../.."
. ~/.cache/nbdboot/kernel.env
. Tests/vm/client-lib.sh
client=.build/static/nbd-client
make -s "$client" >/dev/null
port=$(free_port 21383 21390)
port2=$(free_port 21391 21399)
tmp=$(mktemp -d)
kit_pid="" qemu_pid=""
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  [ -s "$tmp/kit.pid" ] && kill "$(cat "$tmp/kit.pid")" 2>/dev/null || true
  [ -s "$tmp/kit2.pid" ] && kill "$(cat "$tmp/kit2.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The export: a small ext4 image holding one known file (no loop mount).
mkdir "$tmp/root"
echo "hello from nbdboot" >"$tmp/root/hello.txt"
mke2fs -q -t ext4 -d "$tmp/root" -F "$tmp/disk.img" 8M
# The same file system as partition 1 of an MBR disk (written by hand: no
# sfdisk here): 1 MiB of table and gap, then the ext4 image.
python3 - "$tmp/disk.img" "$tmp/parted.img" <<'PY'
import struct, sys
fs = open(sys.argv[1], "rb").read()
start, count = 2048, len(fs) // 512
entry = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start, count)
mbr = bytearray(512)
mbr[446:462] = entry
mbr[510:512] = b"\x55\xaa"
with open(sys.argv[2], "wb") as f:
    f.write(mbr + bytes(start * 512 - 512) + fs)
PY

# The initramfs.
r=$tmp/initrd
mkdir -p "$r"/{bin,sbin,proc,sys,dev,mnt,tmp,lib/modules}
cp /bin/busybox "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cp "$client" "$r/sbin/nbd-client"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover \
         virtio_net nbd crc16 mbcache jbd2 crc32c_generic ext4; do
  cp "$(modinfo -b "$NBDBOOT_MODROOT" -k "$NBDBOOT_KVER" -n $m)" "$r/lib/modules/$m.ko"
done
cp Tests/vm/client-guest-init.sh "$r/init"
# Debian's nbd-client 3.24 and what ldd says it needs (as Debian's hook copies it).
install -D -m 755 /usr/sbin/nbd-client "$r/debian/nbd-client"
for lib in $(ldd /usr/sbin/nbd-client | grep -o '/[^ ]*'); do install -D -m 755 "$(readlink -f "$lib")" "$r$lib"; done
mkdir -p "$r/etc"
cat >"$r/udhcpc.sh" <<'DHCP'
#!/bin/sh
# udhcpc hook: apply the lease with busybox ifconfig/route.
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$router" ] && route add default gw "${router%% *}" dev "$interface"
    ;;
esac
exit 0
DHCP
chmod +x "$r/init" "$r/udhcpc.sh"
(cd "$r" && find . | sort | cpio -o -H newc --quiet | gzip) >"$tmp/initrd.gz"

mkdir "$tmp/exports"
ln -s ../disk.img "$tmp/exports/station"
ln -s ../parted.img "$tmp/exports/parted"
start_server() {
  rm -f "$tmp/kit.pid"
  # Export "station" is the bare file system, "parted" the partitioned disk
  # (nbdkit's file plugin in directory mode serves each file by its name).
  nbdkit -p $port -i 127.0.0.1 -P "$tmp/kit.pid" file dir="$tmp/exports"
  wait_pidfile "$tmp/kit.pid"
}
start_server
# Export 2: 8 MiB of memory, no NBD_FLAG_CAN_MULTI_CONN, at most 64 KiB per request.
nbdkit -p $port2 -i 127.0.0.1 -P "$tmp/kit2.pid" --filter=multi-conn --filter=blocksize-policy memory 8M \
  multi-conn-mode=disable blocksize-minimum=512 blocksize-preferred=4096 blocksize-maximum=65536
wait_pidfile "$tmp/kit2.pid"

log=$tmp/console.log
: >"$log"
timeout 180 qemu-system-x86_64 -M q35 -m 512 -smp 1 -accel tcg -display none -serial file:"$log" -no-reboot \
  -kernel "$NBDBOOT_VMLINUZ" -initrd "$tmp/initrd.gz" -append "console=ttyS0 panic=-1 loglevel=5 nbdport=$port nbdport2=$port2" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0 </dev/null &
qemu_pid=$!

# While the guest runs: restart the server once when it asks.
restarted=0 frozen=0
for _ in $(seq 1300); do
  kill -0 "$qemu_pid" 2>/dev/null || break
  if [ $restarted = 0 ] && grep -q "CLIENTTEST restart-server" "$log"; then
    # SIGKILL, a crash: on SIGTERM nbdkit keeps the connection open and answers
    # ESHUTDOWN, which the kernel turns into I/O errors instead of a dead link.
    kill -9 "$(cat "$tmp/kit.pid")"; sleep 3; start_server; restarted=1
    echo "host: server restarted"
  fi
  if [ $frozen = 0 ] && grep -q "CLIENTTEST freeze-server" "$log"; then
    kill -STOP "$(cat "$tmp/kit.pid")"; sleep 6; kill -CONT "$(cat "$tmp/kit.pid")"; frozen=1
    echo "host: server frozen for 6 s"
  fi
  sleep 0.1
done
wait "$qemu_pid" || true
qemu_pid=""
echo "---- guest console (test lines and nbd messages)"
grep -aE "CLIENTTEST|nbd|Connected|disconnect" "$log" || true
echo "----"

missing=0
for m in idle-check-1 badname-exit-1 \
         netlink-connect-ok netlink-check-connected netlink-backend-ok netlink-content-ok netlink-disconnect-ok netlink-check-disconnected \
         ioctl-connect-ok ioctl-check-connected ioctl-blocksize-ok ioctl-content-ok ioctl-disconnect-ok ioctl-check-disconnected ioctl-child-exited \
         nofork-serves-itself swap-locked nofork-exit-0 \
         readonly-ok multiconn-ok exportname-route-content-ok \
         persist-connect-ok persist-resident-marked persist-content-ok persist-survives-without-sys persist-read-after-restart-ok persist-reconnected \
         persist-disconnect-ok persist-monitor-exited parted-connect-ok parted-partition-ok freeze-connect-ok freeze-read-ok freeze-reconnected \
         same-idle-check same-check-ours same-check-debians ours-disconnects-debians debian-disconnects-ours same-list \
         nbdtab-debian-drops-port nbdtab-ours-connect nbdtab-ours-content nbdtab-same-check nbdtab-disconnect nbdtab-missing-entry-exit-1 \
         uri-connect-ok multiconn-refused maxpayload-capped swap-autolock done; do
  if grep -aq "CLIENTTEST $m" "$log"; then echo "ok   $m"; else echo "MISS $m"; missing=$((missing + 1)); fi
done
[ $missing -eq 0 ] || { echo "FAIL: $missing markers missing (full console: keep by running with TMPDIR set)"; tail -40 "$log"; exit 1; }
echo "PASS test-client-connect"
