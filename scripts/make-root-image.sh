#!/usr/bin/env bash
# Builds nbdboot's demo root filesystem image: a small ext4 file holding
# busybox-static and the /sbin/init of initramfs/demo-root/, which proves on
# the console that / is /dev/nbd0 and writable, prints
# `NBDBOOT-DEMO-OK root=/dev/nbdN` and powers off.
#
#   scripts/make-root-image.sh OUT [SIZE]      (SIZE as for mke2fs, default 32M)
#
# No loop mount and no root privileges: the tree is staged in a temporary
# directory and copied into the new filesystem by `mke2fs -d` (e2fsprogs >=
# 1.43). What can be fixed is: UUID (-U), directory hash seed
# (-E hash_seed=), every file's mtime and atime (SOURCE_DATE_EPOCH, default
# 0), owners (root). mke2fs 1.47.0 still stamps the superblock and each
# inode's ctime/crtime with the current time, so two images differ in those
# bytes (and the checksums over them) only.
# Environment: BUSYBOX (default: busybox on PATH, must be static),
# ROOT_UUID, SOURCE_DATE_EPOCH.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: $0 OUT [SIZE]   (SIZE as for mke2fs: 32M, 64M...; default 32M)" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1; size=${2:-32M}
[[ $size =~ ^[0-9]+[KMG]?$ ]] || { echo "make-root-image.sh: SIZE '$size' is not a size like 32M or 65536K" >&2; exit 2; }
skeleton=$here/initramfs/demo-root
[ -x "$skeleton/sbin/init" ] || { echo "make-root-image.sh: $skeleton/sbin/init is missing or not executable" >&2; exit 1; }

busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] && [ -x "$busybox" ] || { echo "make-root-image.sh: no busybox found: install busybox-static (apt-get install busybox-static) or set BUSYBOX=PATH" >&2; exit 1; }
# A dynamic busybox would need its libraries in the image: insist on static.
if file -bL "$busybox" | grep -q 'dynamically linked'; then
  echo "make-root-image.sh: $busybox is dynamically linked; install busybox-static or set BUSYBOX to a static busybox" >&2; exit 1
fi
command -v mke2fs >/dev/null || { echo "make-root-image.sh: mke2fs not found: install e2fsprogs" >&2; exit 1; }

epoch=${SOURCE_DATE_EPOCH:-0}
uuid=${ROOT_UUID:-6e62646e-626f-4f74-8000-64656d6f0001}
hash_seed=6e62646e-626f-4f74-8000-686173680001

stage=$(mktemp -d "${TMPDIR:-/tmp}/nbdboot-root.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/lib,mnt}
chmod 1777 "$stage/tmp"
cp -a "$skeleton/." "$stage/"
install -m 0755 "$busybox" "$stage/bin/busybox"
# `busybox --install -s` semantics, done on the host: one absolute symlink per
# applet at the path busybox itself lists (bin/ls, sbin/poweroff, usr/bin/...),
# except where the skeleton already put a real file (sbin/init).
while read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = bin/busybox ] && continue
  [ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] && continue
  mkdir -p "$stage/$(dirname "$applet")"
  ln -s /bin/busybox "$stage/$applet"
done < <("$busybox" --list-full)
[ -L "$stage/bin/sh" ] || { echo "make-root-image.sh: $busybox --list-full gave no bin/sh applet" >&2; exit 1; }

# Reproducibility: same mtimes everywhere, symlinks included (-h).
find "$stage" -exec touch -h -d "@$epoch" {} +

mkdir -p "$(dirname "$out")"
rm -f "$out"; : >"$out"   # an existing file: mke2fs then does not announce "Creating regular file"
mke2fs -q -F -t ext4 -d "$stage" -L nbdroot -U "$uuid" -E "hash_seed=$hash_seed,root_owner=0:0" \
  -m 0 "$out" "$size" || { echo "make-root-image.sh: mke2fs failed for $out (size $size too small for $(du -sh "$stage" | cut -f1) of files?)" >&2; exit 1; }
echo "$out: ext4, label nbdroot, UUID $uuid, size $size, $(du -sh --apparent-size "$stage" | cut -f1) of files (busybox, /sbin/init from initramfs/demo-root)"
