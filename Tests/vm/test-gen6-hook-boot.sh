#!/usr/bin/env bash
# A Debian-made initramfs with nbdboot's initramfs-tools hook boots a station from NBD:
# mkinitramfs (initramfs-tools 0.142 from its .deb, run in a private mount namespace as
# Tests/e2e/test-initramfs-distro.sh explains) builds the image with the hook and the
# local-top script installed as `make install` lays them out; QEMU boots Debian's kernel
# with it and `nbdroot=10.0.2.2:PORT/root ip=dhcp`; initramfs-tools brings the network up
# (ipconfig), our local-top script runs nbdboot's static client, initramfs-tools mounts
# /dev/nbd0 and runs the root's /sbin/init, which prints ROOT-OK and the client's process
# command line (@sbin/nbd-client ...: resident, and marked for systemd by its first character). The server is nbdboot's own.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=21600-21699}"
. Tests/vm/lib.sh
vm_setup gen6-hook-boot
vm_load_kernel; vm_require_pieces
[ "$(id -u)" = 0 ] || vm_die "needs root (unshare -m and mount run mkinitramfs in a private namespace)"
H=initramfs/hooks
DISTRO=$HOME/.cache/nbdboot/distro-root
if [ ! -x "$DISTRO/usr/sbin/mkinitramfs" ]; then
  debs=$HOME/.cache/nbdboot/distro-debs; mkdir -p "$debs"
  (cd "$debs" && apt-get download initramfs-tools-core klibc-utils libklibc dracut-core) || vm_die "apt-get download failed (offline?)"
  rm -rf "$DISTRO.tmp"; mkdir -p "$DISTRO.tmp"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$DISTRO.tmp"; done
  cp -a "$DISTRO.tmp/lib/." "$DISTRO.tmp/usr/lib/"; rm -rf "$DISTRO"; mv "$DISTRO.tmp" "$DISTRO"
fi

# The root: busybox, and an /sbin/init that reports and powers off.
r=$VM_WORK/rootfs
mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,etc}
cp /bin/busybox "$r/bin/busybox"
cat > "$r/sbin/init" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
echo "ROOT-CLIENT $(/bin/busybox ps -o args | /bin/busybox grep '^@.*nbd-client ' | /bin/busybox head -1)"
/bin/busybox ps -o pid,args | /bin/busybox grep -v "\[" | /bin/busybox sed "s/^/PS /"
/bin/busybox poweroff -f
EOS
chmod 755 "$r/sbin/init"
mke2fs -q -t ext4 -d "$r" "$VM_WORK/root.img" 64M

# The image: initramfs-tools' configuration with MODULES=list and the station's modules, and
# the hook as installed (Debian's nbd-client hook, installed on this machine, runs too: ours
# replaces its client and removes its local-top script).
stage=$VM_WORK/stage
install -D -m 755 "$NBDBOOT_STATIC/nbd-client" "$stage/lib/nbdboot/nbd-client"
install -D -m 644 $H/nbdboot-lib.sh "$stage/share/nbdboot/nbdboot-lib.sh"
install -D -m 755 $H/initramfs-tools/hooks/nbdboot "$stage/share/initramfs-tools/hooks/nbdboot"
install -D -m 755 $H/initramfs-tools/scripts/local-top/nbdboot "$stage/share/initramfs-tools/scripts/local-top/nbdboot"
cp -a "$DISTRO/etc/initramfs-tools" "$VM_WORK/conf"
sed -i 's/^MODULES=.*/MODULES=list/' "$VM_WORK/conf/initramfs.conf"
printf '%s\n' virtio_pci virtio_net ext4 >> "$VM_WORK/conf/modules"
# udev is not installed on this machine, and it is udev's init-bottom script that moves /dev onto
# the new root on a Debian system (initramfs-tools' init expects that): a two-line stand-in.
mkdir -p "$VM_WORK/conf/scripts/init-bottom"
printf '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\nmount -n -o move /dev "${rootmnt:?}/dev"\n' > "$VM_WORK/conf/scripts/init-bottom/move-dev"
chmod 755 "$VM_WORK/conf/scripts/init-bottom/move-dev"
unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=$1:$2:$3:/usr" /usr &&
  mount --bind "$3/boot" /boot && shift 3 && exec "$@"' sh "$stage" "$DISTRO/usr" "$NBDBOOT_MODROOT" \
  mkinitramfs -d "$VM_WORK/conf" -o "$VM_WORK/initrd" "$NBDBOOT_KVER" > "$VM_WORK/mk.log" 2>&1 ||
  { cat "$VM_WORK/mk.log"; vm_die "mkinitramfs with the nbdboot hook failed"; }
vm_log "mkinitramfs image with the nbdboot hook: $(stat -c %s "$VM_WORK/initrd") bytes"

start_nbdboot_server root="$VM_WORK/root.img"
log=$VM_WORK/console.log
boot_station "$log" "nbdroot=10.0.2.2:$VM_SERVER_PORT/root root=/dev/nbd0 ip=dhcp rw" || true
expect_console "ROOT-OK /dev/nbd0" "$log"
expect_console "ROOT-CLIENT @sbin/nbd-client 10.0.2.2 $VM_SERVER_PORT /dev/nbd0 -N root -systemd-mark -persist" "$log"
echo "PASS: mkinitramfs + nbdboot hook booted the root from NBD with the static client resident"
