#!/usr/bin/env bash
# Boot time: kernel start to the root's /sbin/init, nbdboot's image against a
# busybox + Debian nbd-client image that this test builds by hand
# (Tests/vm/busybox-nbd-initramfs.sh: busybox-static, nbd-client 3.24 with
# its libraries and loader, the same modules, a minimal /init script with no
# sleep and no udev; zstd like nbdboot's default). Same kernel, same
# `nbdboot serve`, same root image, same kernel command line
# (nbdroot=10.0.2.2:PORT/root ip=dhcp). The root's /sbin/init reads
# /proc/uptime first thing (the guest's time since the kernel started) and
# prints it; it then remounts / read-only, so every boot finds the same clean
# ext4, and powers off.
#
# The clock: QEMU runs with -icount shift=0 (BOOTTIME_ICOUNT), so the guest's
# clock advances 1 ns per guest instruction while the CPU works, and with the
# host's clock only while it idles (waiting for DHCP or the server). Plain
# TCG ties the guest's clock to the host's, and on a busy 2-core machine the
# same kernel then took 1.7 to 4.2 s to reach /init from one boot to the next:
# more than the difference measured here. With icount the same boot repeats
# within 10 ms (now and then 100 ms more, when the host is slow to answer).
# BOOTTIME_ICOUNT=off measures on plain TCG instead.
#
# The two images boot alternately, BOOTTIME_ROUNDS times each (default 3,
# odd), the order swapped every round. Printed: every boot, both medians,
# their ratio, both image sizes. FAIL when an image does not reach the
# root's init, or when nbdboot's median is greater than the busybox +
# nbd-client median (no slack). 1.5 minutes on a 2-core machine, 2.5 when
# it is busy (icount makes TCG slower).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VM_PORT_RANGE:=22200-22299}"
export VM_PORT_RANGE
. Tests/vm/lib.sh
rounds=${BOOTTIME_ROUNDS:-3}
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ $((rounds % 2)) = 1 ] ||
  vm_die "BOOTTIME_ROUNDS='$rounds' must be an odd number (a median of real boots)"
icount=${BOOTTIME_ICOUNT:-shift=0}
case $icount in
  off) qemu_args=(); clock="TCG, guest clock = host time" ;;
  *) qemu_args=(-- -icount "$icount"); clock="TCG -icount $icount, guest clock = instructions executed" ;;
esac

# What the test needs on this machine; scripts/deps.sh installs the missing ones.
need_deps=0
for t in zstd cpio mke2fs dumpe2fs dpkg-deb qemu-system-x86_64; do command -v "$t" >/dev/null || need_deps=1; done
file -bL /bin/busybox 2>/dev/null | grep -q 'statically linked' || need_deps=1
if [ "$need_deps" = 1 ]; then
  scripts/deps.sh >&2 || vm_die "scripts/deps.sh could not install what this test needs (zstd, cpio, busybox-static, e2fsprogs, qemu)"
fi

vm_setup boot6-boottime
vm_load_kernel
vm_require_pieces
VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-60}

# The root: busybox, and an /sbin/init that takes the time before anything else.
r=$VM_WORK/rootfs
mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,etc}
cp /bin/busybox "$r/bin/busybox"
cat >"$r/sbin/init" <<'EOS'
#!/bin/busybox sh
read -r up _ 2>/dev/null </proc/uptime || { echo "BOOTTIME-NO-PROC: the initramfs did not hand over /proc"; /bin/busybox poweroff -f; }
echo "BOOTTIME-ROOT-INIT uptime=$up root=$(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
/bin/busybox mount -o remount,ro / || echo "BOOTTIME-REMOUNT-FAILED"
/bin/busybox poweroff -f
EOS
chmod 755 "$r/sbin/init"
img=$VM_WORK/root.img
: >"$img"   # an existing file: mke2fs does not announce "Creating regular file"
mke2fs -q -F -t ext4 -d "$r" "$img" 32M || vm_die "mke2fs could not make $img"

build_initramfs "$VM_WORK/nbdboot.img"
NBDBOOT=$NBDBOOT NBDBOOT_KVER=$NBDBOOT_KVER NBDBOOT_MODROOT=$NBDBOOT_MODROOT \
  Tests/vm/busybox-nbd-initramfs.sh "$VM_WORK/nbdboot.img" "$VM_WORK/busybox.img" ||
  vm_die "could not build the busybox + Debian nbd-client image (Tests/vm/busybox-nbd-initramfs.sh)"
nb_size=$(stat -c %s "$VM_WORK/nbdboot.img"); bb_size=$(stat -c %s "$VM_WORK/busybox.img")

start_nbdboot_server root="$img"
append="nbdroot=10.0.2.2:$VM_SERVER_PORT/root ip=dhcp nbdboot.fail-delay=1"

# to_ms S.CC: /proc/uptime's seconds (two decimals) in milliseconds.
to_ms() { [[ $1 =~ ^([0-9]+)\.([0-9]{2})$ ]] && echo $((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]} * 10)); }

# boot KIND N: one boot; appends the root init's uptime (ms) to the KIND's list.
declare -A times=()
boot() {
  local kind=$1 n=$2 log=$VM_WORK/$1-$2.log start=$SECONDS rc=0 line ms init
  VM_INITRD=$VM_WORK/$kind.img boot_station "$log" "$append" "${qemu_args[@]}" || rc=$?
  [ "$rc" != 124 ] || vm_log "FAIL: $kind boot $n did not power off within $VM_STATION_TIMEOUT s"
  ! grep -aq 'BOOTTIME-NO-PROC' "$log" || vm_die "$kind image, boot $n: the root's /sbin/init found no /proc/uptime (console: $log)"
  ! grep -aq 'BOOTTIME-REMOUNT-FAILED' "$log" ||
    vm_die "$kind image, boot $n: / could not be remounted read-only, so the next boot would replay the journal (console: $log)"
  if ! grep -aq 'BOOTTIME-ROOT-INIT uptime=' "$log"; then
    expect_console "BOOTTIME-ROOT-INIT uptime=" "$log" || true
    vm_die "$kind image, boot $n: the root's /sbin/init never ran (console: $log)"
  fi
  line=$(grep -a -m 1 'BOOTTIME-ROOT-INIT uptime=' "$log" | tr -d '\r')
  [[ $line == *" root=/dev/nbd0" ]] || vm_die "$kind image, boot $n: / is not /dev/nbd0: $line"
  ms=$(to_ms "$(sed 's/.*uptime=\([^ ]*\).*/\1/' <<<"$line")") || vm_die "$kind image, boot $n: cannot read the uptime in '$line'"
  # Where the initramfs's own /init started, as each one reports it.
  if [ "$kind" = nbdboot ]; then
    init=$(grep -a -m 1 -o 'started as PID 1, [0-9]* ms after the kernel' "$log" | grep -o '[0-9]\+' | tail -1 || true)
  else
    init=$(to_ms "$(grep -a -m 1 -o 'bbinit: started, uptime [0-9.]* s' "$log" | grep -o '[0-9.]\+' | tail -1)" || true)
  fi
  times[$kind]="${times[$kind]:-} $ms"
  printf '  %-8s boot %d: root /sbin/init at %5d ms after kernel start (its /init at %s ms, %s ms in it; %d s wall)\n' \
    "$kind" "$n" "$ms" "${init:-?}" "$([ -n "$init" ] && echo $((ms - init)) || echo '?')" $((SECONDS - start))
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR] = $1} END {print a[(NR + 1) / 2]}'; }

echo "boot time, kernel start to the root's /sbin/init ($rounds boots of each image, alternating; kernel $NBDBOOT_KVER; $clock):"
for ((i = 1; i <= rounds; i++)); do
  if [ $((i % 2)) = 1 ]; then boot nbdboot "$i"; boot busybox "$i"; else boot busybox "$i"; boot nbdboot "$i"; fi
done
stop_nbdboot_server

state=$(dumpe2fs -h "$img" 2>/dev/null | grep -E '^Filesystem (state|features):' || true)
grep -q 'state: *clean$' <<<"$state" && ! grep -q needs_recovery <<<"$state" ||
  vm_die "the root image was not left clean by the last boot, so the boots did not all mount the same filesystem: $state"

nb=$(median "${times[nbdboot]}"); bb=$(median "${times[busybox]}")
ratio=$(awk -v a="$nb" -v b="$bb" 'BEGIN {printf "%.2f", a / b}')
printf 'image sizes (zstd): nbdboot %d bytes, busybox + Debian nbd-client %d bytes (%.1fx)\n' \
  "$nb_size" "$bb_size" "$(awk -v a="$bb_size" -v b="$nb_size" 'BEGIN {print a / b}')"
echo "median, kernel start to the root's /sbin/init: nbdboot $nb ms [${times[nbdboot]# }], busybox + Debian nbd-client $bb ms [${times[busybox]# }]; nbdboot/busybox = $ratio"
if [ "$nb" -gt "$bb" ]; then
  echo "FAIL: nbdboot's image reaches the root's /sbin/init later than the busybox + Debian nbd-client image ($nb ms > $bb ms, medians of $rounds boots)"
  exit 1
fi
echo "PASS: nbdboot's image reaches the root's /sbin/init in $nb ms, the busybox + Debian nbd-client image in $bb ms (medians of $rounds boots)"
