#!/usr/bin/env bash
# Builds the comparison initramfs of Tests/vm/test-boot6-boottime.sh: what an
# expert would put together by hand from Debian's packages, with no
# generator, to boot a station from NBD as fast as busybox and Debian's
# nbd-client allow.
#
#   Tests/vm/busybox-nbd-initramfs.sh NBDBOOT_IMAGE OUT
#
# NBDBOOT_IMAGE is an image made by `nbdboot initramfs build`: the
# comparison image gets the same kernel modules, in the same load order with
# the same parameters (its /etc/nbdboot/modules, checked against
# `nbdboot initramfs ls`), copied from $NBDBOOT_MODROOT. The rest comes from
# Debian packages fetched with `apt-get download` and cached (never
# installed) in ~/.cache/nbdboot/busybox-nbd-debs ($NBDBOOT_CACHE moves it):
#   busybox-static   /bin/busybox, with a symbolic link per applet the init uses
#   nbd-client       /sbin/nbd-client (3.24 in Debian 12), dynamically linked:
#                    its libraries and the loader, as ldd lists them, from the
#                    library packages it depends on (libc6, libgnutls30,
#                    libnl-3-200, ...), found by walking their Depends
# and an /init shell script that does only what a root over NBD needs:
# mount devtmpfs, proc, sysfs; insmod the modules; udhcpc on eth0 with a
# minimal script (address and default route); nbd-client HOST PORT /dev/nbd0
# -N NAME from nbdroot=HOST:PORT/NAME; mount /dev/nbd0 (ext4, or
# rootfstype=) on /root; move /dev /proc /sys there; switch_root. No sleep,
# no udev. On any failure it prints `bbinit: FAIL: ...` and reboots (QEMU
# with -no-reboot exits).
#
# The archive is newc, sorted, uid/gid 0, compressed as nbdboot's default
# (zstd -19 -T1). Needs: apt-get, dpkg-deb, cpio, zstd; $NBDBOOT (default
# .build/release/nbdboot); NBDBOOT_KVER and NBDBOOT_MODROOT (the kernel.env
# of scripts/kernel.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "busybox-nbd-initramfs.sh: $*" >&2; exit 1; }
[ $# = 2 ] || { sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
nbdboot_image=$1; out=$2
: "${NBDBOOT:=$repo/.build/release/nbdboot}"
[ -x "$NBDBOOT" ] || die "no nbdboot executable at $NBDBOOT (make build)"
[ -f "$nbdboot_image" ] || die "no nbdboot image at $nbdboot_image"
[ -n "${NBDBOOT_KVER:-}" ] && [ -d "${NBDBOOT_MODROOT:-}/lib/modules/${NBDBOOT_KVER:-}" ] ||
  die "NBDBOOT_KVER and NBDBOOT_MODROOT must name the kernel (source the kernel.env of scripts/kernel.sh)"
for t in apt-get apt-cache dpkg-deb cpio zstd; do
  command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs cpio and zstd)"
done

cache=${NBDBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nbdboot}/busybox-nbd-debs
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/busybox-nbd-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1. The packages: busybox-static, nbd-client, and the library packages
# nbd-client needs, found by walking Depends/PreDepends through lib*
# packages only (debconf and the like are not needed to run the binary).
declare -A seen=()
pkgs=(busybox-static)
queue=(nbd-client)
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}; queue=("${queue[@]:1}")
  [ -z "${seen[$p]:-}" ] || continue
  seen[$p]=1; pkgs+=("$p")
  while read -r dep; do
    [ -z "${seen[$dep]:-}" ] && queue+=("$dep")
  done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
             --no-enhances "$p" 2>/dev/null | awk '$1 ~ /^\|?(Pre)?Depends:$/ && $2 ~ /^lib/ {print $2}')
done
[ -n "${seen[libc6]:-}" ] || die "apt-cache depends nbd-client gave no libc6: is nbd-client in the package lists (apt-get update)?"
missing=()
for p in "${pkgs[@]}"; do
  compgen -G "$cache/${p}_*_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "busybox-nbd-initramfs.sh: apt-get download ${missing[*]} (into $cache)" >&2
  (cd "$cache" && apt-get download "${missing[@]}" >&2) ||
    { apt-get update -qq >&2 && (cd "$cache" && apt-get download "${missing[@]}" >&2); } ||
    die "apt-get download ${missing[*]} failed (offline?)"
fi
debroot=$work/debs
mkdir -p "$debroot"
for p in "${pkgs[@]}"; do
  # The newest cached version of each package (several may accumulate).
  deb=$(ls -1 "$cache/${p}"_*_*.deb | sort -V | tail -1)
  dpkg-deb -x "$deb" "$debroot"
done

# --- 2. The tree.
r=$work/root
mkdir -p "$r"/{bin,sbin,dev,proc,sys,root,run,tmp,etc}
bb=$debroot/bin/busybox
[ -x "$bb" ] || die "busybox-static's package has no /bin/busybox"
install -m 755 "$bb" "$r/bin/busybox"
for a in sh mount insmod ip udhcpc switch_root reboot; do ln -s busybox "$r/bin/$a"; done

client=$debroot/sbin/nbd-client
[ -x "$client" ] || client=$debroot/usr/sbin/nbd-client
[ -x "$client" ] || die "nbd-client's package has no /sbin/nbd-client or /usr/sbin/nbd-client"
install -m 755 "$client" "$r/sbin/nbd-client"
# ldd, with the downloaded libraries instead of the host's: the packages'
# loader lists what it would load from the packages' library directories.
# Each library goes in at its path on a Debian system, the loader at the
# program's PT_INTERP.
libdirs=$debroot/lib/x86_64-linux-gnu:$debroot/usr/lib/x86_64-linux-gnu
loader=$(ls "$debroot"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$debroot"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 2>/dev/null | head -1) ||
  true
[ -n "$loader" ] || die "libc6's package has no ld-linux-x86-64.so.2"
listing=$("$loader" --library-path "$libdirs" --list "$client") || die "the packages' loader cannot resolve nbd-client's libraries: $listing"
# The program's interpreter (PT_INTERP) is the line "/lib64/ld-linux-x86-64.so.2 => ...".
interp=$(awk '$1 ~ /^\// && $2 == "=>" {print $1; exit}' <<<"$listing")
[ -n "$interp" ] || die "ldd shows no loader for nbd-client: $listing"
nlibs=0
while read -r path; do
  case $path in "$debroot"/*) ;; *) die "nbd-client's library $path is not from the downloaded packages" ;; esac
  rel=${path#"$debroot"}
  rel=${rel/#\/usr\/lib\//\/lib\/}   # /usr/lib and /lib are the same directory on Debian 12
  install -D -m 755 "$(readlink -f "$path")" "$r$rel"
  nlibs=$((nlibs + 1))
done < <(printf '%s\n' "$listing" | grep -o "$debroot/[^ ]*" | sort -u)
[ "$nlibs" -gt 0 ] || die "ldd listed no libraries for nbd-client: $listing"
# The loader where the program asks for it: as on Debian, a link to the copy
# in the library directory when that is another path.
loader_rel=${loader#"$debroot"}; loader_rel=${loader_rel/#\/usr\/lib\//\/lib\/}
[ -f "$r$loader_rel" ] || install -D -m 755 "$(readlink -f "$loader")" "$r$loader_rel"
if [ "$interp" != "$loader_rel" ] && [ ! -e "$r$interp" ]; then
  mkdir -p "$r$(dirname "$interp")"; ln -s "$loader_rel" "$r$interp"
fi
# Run it once on the host, from the tree, through the tree's loader: a
# missing library shows here, not at boot.
usage=$("$r$loader_rel" --library-path "$r/lib/x86_64-linux-gnu" "$r/sbin/nbd-client" -h 2>&1 || true)
grep -q 'nbd-client version' <<<"$usage" || die "nbd-client from the tree does not run: $(head -3 <<<"$usage")"

# The modules: the set `nbdboot initramfs ls` lists, in the order and with
# the parameters of the image's /etc/nbdboot/modules, from the kernel tree.
"$NBDBOOT" initramfs extract "$nbdboot_image" "$work/nbdboot" >/dev/null || die "nbdboot initramfs extract $nbdboot_image failed"
listed=$("$NBDBOOT" initramfs ls "$nbdboot_image" | grep -o 'lib/modules/[^ ]*\.ko$' | sort) || die "nbdboot initramfs ls $nbdboot_image lists no modules"
[ -f "$work/nbdboot/etc/nbdboot/modules" ] || die "$nbdboot_image has no /etc/nbdboot/modules"
: >"$r/etc/modules"
nmods=0
while read -r ko params; do
  [ -n "$ko" ] || continue
  grep -qxF "$ko" <<<"$listed" || die "$ko of /etc/nbdboot/modules is not in the listing of $nbdboot_image"
  [ -f "$NBDBOOT_MODROOT/$ko" ] || die "$NBDBOOT_MODROOT/$ko is missing"
  install -D -m 644 "$NBDBOOT_MODROOT/$ko" "$r/$ko"
  echo "/$ko${params:+ $params}" >>"$r/etc/modules"
  nmods=$((nmods + 1))
done <"$work/nbdboot/etc/nbdboot/modules"
[ "$nmods" = "$(grep -c . <<<"$listed")" ] || die "/etc/nbdboot/modules names $nmods modules, the image holds $(grep -c . <<<"$listed")"

cat >"$r/etc/udhcpc.script" <<'EOS'
#!/bin/sh
# udhcpc's hook: the lease's address and default route, nothing else.
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
[ -z "$router" ] || ip route add default via "${router%% *}" dev "$interface"
EOS
chmod 755 "$r/etc/udhcpc.script"

cat >"$r/init" <<'EOS'
#!/bin/sh
# PID 1 of the busybox + Debian nbd-client comparison image
# (Tests/vm/busybox-nbd-initramfs.sh). nbdroot=HOST:PORT/NAME only.
export PATH=/sbin:/bin
fail() { echo "bbinit: FAIL: $*"; reboot -f; exit 1; }
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
[ -t 1 ] || exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
read -r up _ </proc/uptime
echo "bbinit: started, uptime $up s"
failed=""
while read -r ko params; do
  insmod "$ko" $params 2>/dev/null || failed="$failed ${ko##*/}"
done </etc/modules
[ -z "$failed" ] || echo "bbinit: not loaded:$failed"
root=""; fstype=ext4
read -r cmdline </proc/cmdline
for a in $cmdline; do
  case $a in
    nbdroot=*) root=${a#nbdroot=} ;;
    rootfstype=*) fstype=${a#rootfstype=} ;;
  esac
done
case $root in ?*:?*/?*) ;; *) fail "nbdroot=HOST:PORT/NAME missing (got '$root')" ;; esac
host=${root%%:*}; rest=${root#*:}; port=${rest%%/*}; name=${rest#*/}
ip link set eth0 up || fail "ip link set eth0 up"
udhcpc -i eth0 -f -q -n -t 5 -T 1 -s /etc/udhcpc.script || fail "udhcpc on eth0"
nbd-client "$host" "$port" /dev/nbd0 -N "$name" || fail "nbd-client $host $port /dev/nbd0 -N $name"
mount -t "$fstype" /dev/nbd0 /root || fail "mount /dev/nbd0 on /root"
for d in dev proc sys; do mount --move "/$d" "/root/$d" || fail "mount --move /$d"; done
exec switch_root /root /sbin/init
EOS
chmod 755 "$r/init"
# The console node, so that /init has fds 0-2 from its first instruction
# (mknod needs root; without it /init reopens the console from devtmpfs).
[ "$(id -u)" != 0 ] || mknod -m 600 "$r/dev/console" c 5 1

# --- 3. The archive: sorted, owner 0, mtime fixed, zstd as nbdboot's default.
find "$r" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
tmp=$out.tmp.$$
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | zstd -19 -T1 -q -c) >"$tmp" ||
  { rm -f "$tmp"; die "cpio | zstd failed"; }
mv "$tmp" "$out"
echo "busybox-nbd-initramfs.sh: $out: $(stat -c %s "$out") bytes (zstd), busybox $("$bb" 2>&1 | head -1 | awk '{print $2}'), Debian nbd-client with $nlibs libraries and the loader, $nmods modules" >&2
