#!/usr/bin/env bash
# `nbdboot initramfs ls` and `extract` on REAL Debian and dracut images: built here by Debian's
# own mkinitramfs (initramfs-tools 0.142) and dracut (059), each with an early microcode archive
# in front of the compressed main one, in every compression both make (Debian: zstd, gzip, xz,
# lz4; dracut: the same and uncompressed). Our listing must equal `lsinitramfs -l` (mode, links,
# size, path, symlink target) and our extraction must equal `unmkinitramfs` (early and main
# trees merged: type, mode, size, links, symlink target).
#
# The tools are NOT installed (installing them would upgrade systemd and run their triggers on a
# shared machine): their .debs are fetched once with `apt-get download` into
# ~/.cache/nbdboot/distro-debs, unpacked with dpkg-deb -x (no maintainer scripts run), and run in
# a private mount namespace (unshare -m) whose /usr is a read-only overlay of the unpacked tools,
# the kernel's modules and the real /usr, with the kernel's /boot bind-mounted: nothing outside
# the namespace changes. dracut's udev module needs udevadm and systemd-udevd (udev is not
# installed): stand-in scripts are put in the overlay; they only end up as files in the image.
# Needs root (unshare, mount). Run from the repository root.
set -euo pipefail
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
[ -x "$NBDBOOT" ] || { echo "no $NBDBOOT: run make build first"; exit 1; }
NBDBOOT=$(realpath "$NBDBOOT")
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -m and mount run the distributions' tools in a private namespace)"; exit 1; }
. ~/.cache/nbdboot/kernel.env
work=$(mktemp -d /tmp/test-initramfs-distro.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The distributions' tools, unpacked (see above).
DISTRO=$HOME/.cache/nbdboot/distro-root
if [ ! -x "$DISTRO/usr/sbin/mkinitramfs" ] || [ ! -x "$DISTRO/usr/bin/dracut" ]; then
  debs=$HOME/.cache/nbdboot/distro-debs
  mkdir -p "$debs"
  (cd "$debs" && apt-get download initramfs-tools-core klibc-utils libklibc dracut-core) ||
    fail "apt-get download of initramfs-tools-core, klibc-utils, libklibc, dracut-core failed (offline?)"
  rm -rf "$DISTRO.tmp"; mkdir -p "$DISTRO.tmp"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$DISTRO.tmp"; done
  cp -a "$DISTRO.tmp/lib/." "$DISTRO.tmp/usr/lib/"   # libklibc ships /lib/klibc-*.so; Debian 12 has /lib -> usr/lib
  rm -rf "$DISTRO"; mv "$DISTRO.tmp" "$DISTRO"
fi
export PATH=$DISTRO/usr/bin:$DISTRO/usr/sbin:$PATH

# The overlay's extra layer: stand-in udev for dracut, and CPU "microcode" (not real: the point is
# the early archive's layout) where intel-microcode/amd64-microcode would put it.
stage=$work/stage
mkdir -p "$stage/bin" "$stage/lib/systemd" "$stage/lib/firmware/intel-ucode" "$stage/lib/firmware/amd-ucode"
printf '#!/bin/sh\necho stand-in\n' > "$stage/bin/udevadm"; cp "$stage/bin/udevadm" "$stage/lib/systemd/systemd-udevd"
chmod 755 "$stage/bin/udevadm" "$stage/lib/systemd/systemd-udevd"
# Debian's nbd-client package (installed here as a peer) has an initramfs hook that adds every NIC
# driver and its own client with 13 libraries (about 60 MB before compression): hidden with overlay
# whiteouts (character devices 0,0) so the images stay small and the test fast.
mkdir -p "$stage/share/initramfs-tools/hooks" "$stage/share/initramfs-tools/scripts/local-top"
for h in hooks/nbd hooks/nbd-client scripts/local-top/nbd; do
  [ -e "/usr/share/initramfs-tools/$h" ] && mknod "$stage/share/initramfs-tools/$h" c 0 0
done
head -c 3000 /bin/busybox > "$stage/lib/firmware/intel-ucode/06-8e-09"
head -c 2000 /bin/ls > "$stage/lib/firmware/amd-ucode/microcode_amd_fam17h.bin"
in_namespace() {
  unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=$1:$2:$3:/usr" /usr &&
    mount --bind "$3/boot" /boot && shift 3 && exec "$@"' sh "$stage" "$DISTRO/usr" "$NBDBOOT_MODROOT" "$@"
}

# Debian: initramfs-tools' own configuration, MODULES=list, plus a hook that prepends an early
# microcode archive exactly as intel-microcode's hook does (prepend_earlyinitramfs).
conf=$work/conf
cp -a "$DISTRO/etc/initramfs-tools" "$conf"
sed -i 's/^MODULES=.*/MODULES=list/' "$conf/initramfs.conf"
cat > "$conf/hooks/early-microcode" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
d=$(mktemp -d) && mkdir -p "$d/kernel/x86/microcode"
cat /lib/firmware/intel-ucode/* > "$d/kernel/x86/microcode/GenuineIntel.bin"
(cd "$d" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0) > "$d.cpio"
prepend_earlyinitramfs "$d.cpio"
rm -rf "$d" "$d.cpio"
HOOK
chmod 755 "$conf/hooks/early-microcode"

images=()
for comp in zstd gzip xz lz4; do
  SOURCE_DATE_EPOCH=1700000000 in_namespace mkinitramfs -d "$conf" -c "$comp" -o "$work/debian-$comp.img" "$NBDBOOT_KVER" \
    > "$work/mk.log" 2>&1 || { cat "$work/mk.log"; fail "mkinitramfs -c $comp failed"; }
  images+=("debian-$comp")
done
for comp in zstd gzip xz lz4 no; do
  opt=--$comp; [ $comp = no ] && opt=--no-compress
  in_namespace dracut --conf /dev/null --confdir "$work" --no-hostonly --reproducible --early-microcode -m base \
    "$opt" --force --kver "$NBDBOOT_KVER" "$work/dracut-$comp.img" > "$work/dracut.log" 2>&1 ||
    { tail -20 "$work/dracut.log"; fail "dracut $opt failed"; }
  images+=("dracut-$comp")
done

# Fields compared: mode, links, size (or "major,minor"), path and symlink target. `cpio -tv` (what
# lsinitramfs -l prints) has user, group and a date where we print uid and gid.
norm_cpio() { awk '{ if ($1 ~ /^[cb]/) { s=$5 $6; i=10 } else { s=$5; i=9 }; p=$i; for (j=i+1; j<=NF; j++) p=p " " $j; print $1, $2, s, p }'; }
norm_ours() { awk '{ if ($1 ~ /^[cb]/) { s=$5 $6; i=7 } else { s=$5; i=6 }; p=$i; for (j=i+1; j<=NF; j++) p=p " " $j; print $1, $2, s, p }'; }
# A tree: type, mode, size (0 for directories), links (0 for directories), symlink target, path.
tree() { (cd "$1" && find . -mindepth 1 -printf '%y %M %s %n %l %P\n' | awk '$1 == "d" { $3 = 0; $4 = 0 } { print }'); }

for name in "${images[@]}"; do
  img=$work/$name.img
  early_blocks=$(cpio -t < "$img" 2>&1 >/dev/null | awk '{ print $1 }')   # GNU cpio: "N blocks" of 512 bytes
  magic=$(od -An -tx1 -j $((early_blocks * 512)) -N4 "$img" | tr -d ' ')
  # unmkinitramfs (and so lsinitramfs) expects a compressed archive after the uncompressed ones: on an
  # all-uncompressed image it lists and extracts every archive, then exits 2 ("premature end of
  # archive") on the zero padding. That status is its own limit, not the image's; it is accepted there.
  lsinitramfs -l "$img" > "$work/lsinitramfs" 2> "$work/lsinitramfs.err" || [ "$name" = dracut-no ] ||
    { cat "$work/lsinitramfs.err"; fail "$name: lsinitramfs failed"; }
  norm_cpio < "$work/lsinitramfs" > "$work/expected"
  "$NBDBOOT" initramfs ls "$img" > "$work/ours.ls" || fail "$name: initramfs ls failed"
  norm_ours < "$work/ours.ls" > "$work/got"
  diff "$work/expected" "$work/got" > "$work/diff" || { head -20 "$work/diff"; fail "$name: initramfs ls differs from lsinitramfs -l"; }
  grep -q ' kernel/x86/microcode/GenuineIntel.bin$' "$work/got" || fail "$name: no early microcode member"
  rm -rf "$work/u1" "$work/u2"
  unmkinitramfs "$img" "$work/u1" 2>/dev/null || [ "$name" = dracut-no ] || fail "$name: unmkinitramfs failed"
  "$NBDBOOT" initramfs extract "$img" "$work/u2" > /dev/null || fail "$name: initramfs extract failed"
  for d in "$work"/u1/early* "$work/u1/main"; do tree "$d"; done | sort -u > "$work/tree1"
  tree "$work/u2" | sort > "$work/tree2"
  diff "$work/tree1" "$work/tree2" > "$work/diff" || { head -20 "$work/diff"; fail "$name: extract differs from unmkinitramfs"; }
  printf '%-14s %9d bytes, main archive magic %s: %4d entries listed and extracted like lsinitramfs/unmkinitramfs\n' \
    "$name" "$(stat -c %s "$img")" "$magic" "$(wc -l < "$work/got")"
done
echo PASS
