# Shared helpers for the static init's QEMU tests (sourced by test-init-*.sh).
# Builds throw-away initramfs and root images by hand, serves the root with
# nbdkit on 127.0.0.1, boots QEMU (TCG, -no-reboot) and greps the console.
#   init_setup PORT_OFFSET        temp dir, kernel env, cleanup trap
#   init_build_initramfs OUT [nodes]  /init, /sbin/nbd-client, modules, list
#   init_build_root OUT [partitioned]  64 MB ext4 (or an MBR disk with it in
#                                 partition 1) whose /sbin/init prints ROOT-OK
#   init_serve IMG                nbdkit on 127.0.0.1:$port (pid killed on exit)
#   init_boot INITRD LOG APPEND   QEMU, bounded by timeout 120
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
init_bin=$top/.build/static/init
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover
         virtio_net nbd crc16 mbcache jbd2 crc32c-intel crc32c_generic ext4)
pids=()

init_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${work:-}" ] && rm -rf "$work"
}

init_setup() {
  # Start at 21000+offset and take the first port nobody listens on: another
  # test (or a second checkout's suite) may hold the preferred one, and
  # nbdkit's readiness probe would otherwise talk to that other server.
  port=$((21000 + $1))
  local tries=0
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 7)); tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { echo "no free port from $((21000 + $1))"; exit 1; }
  done
  [ -x "$init_bin" ] || { echo "missing $init_bin: run make static first"; exit 1; }
  # shellcheck disable=SC1090
  . ~/.cache/nbdboot/kernel.env
  moddir=$NBDBOOT_MODROOT/lib/modules/$NBDBOOT_KVER
  [ -d "$moddir" ] || { echo "missing $moddir: run make kernel first"; exit 1; }
  work=$(mktemp -d /tmp/nbdboot-init-test.XXXXXX)
  trap init_cleanup EXIT
}

# Copies a dynamic executable and the libraries ldd names into root $1.
copy_with_libs() {
  local root=$1 exe=$2 dest=$3 lib
  install -D -m 755 "$exe" "$root$dest"
  for lib in $(ldd "$exe" | grep -o '/[^ ]*'); do
    install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
  done
}

init_build_initramfs() {
  local out=$1 r=$work/initramfs m f rel
  rm -rf "$r"; mkdir -p "$r"/{dev,proc,sys,run,tmp,newroot,sbin,etc/nbdboot}
  install -m 755 "$init_bin" "$r/init"
  if [ -x "$top/.build/static/nbd-client" ]; then
    install -m 755 "$top/.build/static/nbd-client" "$r/sbin/nbd-client"
  else
    # The static client has not landed yet: Debian's nbd-client 3.24 takes
    # the same arguments (HOST PORT DEV -N NAME -systemd-mark -persist), but
    # it is dynamic, so its libraries and loader come along. (busybox-static
    # has no nbd-client applet.)
    copy_with_libs "$r" /usr/sbin/nbd-client /sbin/nbd-client
  fi
  : > "$r/etc/nbdboot/modules"
  for m in "${modules[@]}"; do
    f=$(find "$moddir/kernel" -name "$m.ko" | head -1)
    [ -n "$f" ] || { echo "module $m not found under $moddir"; exit 1; }
    rel=${f#"$NBDBOOT_MODROOT"/}
    install -D -m 644 "$f" "$r/$rel"
    if [ "$m" = nbd ]; then echo "$rel max_part=15"; else echo "$rel"; fi >> "$r/etc/nbdboot/modules"
  done
  echo "${INIT_KERNEL_RELEASE:-$NBDBOOT_KVER}" > "$r/etc/nbdboot/kernel-release"
  # The generator's images hold /dev/console and /dev/null; with "nodes"
  # (and root, for mknod) this one does too. Without them the kernel starts
  # /init with fds 0-2 closed, and the init opens the console from devtmpfs.
  if [ "${2:-}" = nodes ] && [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$r/dev/console" c 5 1
    mknod -m 666 "$r/dev/null" c 1 3
  fi
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n) > "$out"
}

init_build_root() {
  local out=$1 r=$work/rootfs
  rm -rf "$r"; mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,etc}
  cp /bin/busybox "$r/bin/busybox"
  cat > "$r/sbin/init" <<'EOS'
#!/bin/busybox sh
# Test init of the root image: prove which device is / and that it is writable.
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
if /bin/busybox touch /rw-test 2>/dev/null; then echo "ROOT-RW"; else echo "ROOT-RO"; fi
echo "ROOT-CONF $(/bin/busybox cat /run/net-*.conf 2>/dev/null | /bin/busybox tr '\n' ' ')"
echo "ROOT-LEFT $(/bin/busybox ls /init /etc/nbdboot 2>&1 | /bin/busybox tr '\n' ' ')"
/bin/busybox poweroff -f
EOS
  chmod 755 "$r/sbin/init"
  if [ "${2:-}" = partitioned ]; then
    # An MBR with one Linux partition from 1 MiB to the end (72 MiB), the
    # filesystem written at that offset.
    # The MBR is written by hand (no sfdisk here): entry 1 at byte 446 =
    # status 0, CHS fe ff ff, type 0x83, CHS fe ff ff, LBA 2048, 145408
    # sectors (little-endian), then the 55 aa signature at byte 510.
    truncate -s 72M "$out"
    printf '\x00\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\x38\x02\x00' |
      dd of="$out" bs=1 seek=446 conv=notrunc status=none
    printf '\x55\xaa' | dd of="$out" bs=1 seek=510 conv=notrunc status=none
    mke2fs -q -t ext4 -E offset=1048576 -d "$r" "$out" 71M
  else
    mke2fs -q -t ext4 -d "$r" "$out" 64M
  fi
}

init_serve() {
  local img=$1
  nbdkit -f -v -i 127.0.0.1 -p "$port" file "$img" >"$work/nbdkit.log" 2>&1 &
  pids+=($!)
  local i
  for i in $(seq 50); do
    nbdinfo --size "nbd://127.0.0.1:$port/root" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nbdkit did not start on port $port"; cat "$work/nbdkit.log"; exit 1
}

init_boot() {
  local initrd=$1 log=$2 append=$3 rc=0
  timeout 120 qemu-system-x86_64 -M q35 -m 512 -smp 1 -accel tcg -display none \
    -serial "file:$log" -no-reboot -kernel "$NBDBOOT_VMLINUZ" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 $append" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0 </dev/null >"$log.qemu" 2>&1 &
  local qpid=$!
  pids+=($qpid)
  wait "$qpid" || rc=$?
  boot_rc=$rc
  if [ "$rc" = 124 ]; then echo "QEMU timed out after 120 s"; fi
  return 0
}

# Prints the init's lines and fails unless every pattern is in the log.
expect_lines() {
  local log=$1; shift
  grep -a 'nbdboot-init:\|ROOT-' "$log" | tr -d '\r' || true
  local p ok=0
  for p in "$@"; do
    if ! grep -aq -- "$p" "$log"; then echo "MISSING: $p"; ok=1; fi
  done
  if [ $ok != 0 ]; then
    echo "-- last console lines of $log:"; tail -40 "$log" | tr -d '\r'
    echo "-- nbdkit log:"; tail -20 "$work/nbdkit.log"
  fi
  return $ok
}

# ---- Helpers for Tests/vm/test-boot6-*.sh: real `nbdboot serve` and
# `nbdboot initramfs build` through Tests/vm/lib.sh (ports 21400-21499).
#   b6_setup NAME                 lib.sh work dir, kernel, pieces, EXIT trap
#   b6_root_dir DIR INIT-SCRIPT   busybox root tree whose /sbin/init is the script
#   b6_ext4 OUT DIR SIZE [mke2fs args]   ext4 image of DIR
#   b6_initramfs [ARGS]           $VM_WORK/initrd from the static init and client
#   b6_boot NAME APPEND [ARGS]    boots, console in $VM_WORK/NAME.log, prints seconds;
#                                 ARGS go to qemu-station.sh (--netdev-options ipv6=off)
#   b6_expect LOG PATTERN...      fixed strings that must all be on the console
b6_setup() {
  : "${VM_PORT_RANGE:=21400-21499}"
  export VM_PORT_RANGE
  # shellcheck disable=SC1091
  . "$top/Tests/vm/lib.sh"
  VM_STATION_TIMEOUT=${VM_STATION_TIMEOUT:-60}
  vm_setup "$1"
  vm_load_kernel
  vm_require_pieces
  B6_FAIL=0
}

b6_root_dir() {
  local dir=$1 script=$2
  rm -rf "$dir"; mkdir -p "$dir"/{bin,sbin,dev,proc,sys,run,tmp,etc}
  cp /bin/busybox "$dir/bin/busybox"
  install -m 755 "$script" "$dir/sbin/init"
}

b6_ext4() {
  local out=$1 dir=$2 size=$3; shift 3
  rm -f "$out"
  mke2fs -q -F -t ext4 -d "$dir" "$@" "$out" "$size" || vm_die "mke2fs could not make $out"
}

b6_initramfs() {
  build_initramfs "$VM_WORK/initrd" "$@"
}

b6_boot() {
  local name=$1 append=$2 start=$SECONDS rc=0
  shift 2
  boot_station "$VM_WORK/$name.log" "$append nbdboot.fail-delay=1" "$@" || rc=$?
  vm_log "-- boot $name: $((SECONDS - start)) s (qemu status $rc)"
  [ "$rc" != 124 ] || { vm_log "FAIL: boot $name timed out"; B6_FAIL=1; }
}

b6_expect() {
  local log=$1 p; shift
  for p in "$@"; do expect_console "$p" "$log" || B6_FAIL=1; done
}
