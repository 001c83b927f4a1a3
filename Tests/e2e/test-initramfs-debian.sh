#!/usr/bin/env bash
# `nbdboot initramfs ls` and `extract` on images laid out like Debian's and dracut's: an
# uncompressed "early" newc archive (CPU microcode; GNU cpio pads it to 512 bytes) followed
# by the compressed main archive. mkinitramfs is not installed here (and takes long), so the
# test assembles such images with the system's GNU cpio, once per compression: zstd (Debian
# 12's default), gzip, xz, lz4 legacy (`lz4 -l`, what the kernel reads). Checks: the listing
# matches `cpio -tv` of both parts, extraction reproduces the tree (files, modes, symlinks,
# hard links, device nodes as root; skipped with a note as an ordinary user), and an archive
# with a ".." path is refused without writing anything. Run from the repository root.
set -euo pipefail
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
[ -x "$NBDBOOT" ] || { echo "no $NBDBOOT: run make build first"; exit 1; }
NBDBOOT=$(realpath "$NBDBOOT")
work=$(mktemp -d /tmp/test-initramfs-debian.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The early archive: kernel/x86/microcode/GenuineIntel.bin, as Debian's intel-microcode hook makes it.
mkdir -p "$work/early/kernel/x86/microcode"
head -c 5000 /bin/busybox > "$work/early/kernel/x86/microcode/GenuineIntel.bin"
(cd "$work/early" && find . | sort | cpio -o -H newc --quiet --reproducible) > "$work/early.cpio"

# The main archive: a small busybox root with the file types an initramfs holds.
m=$work/main
mkdir -p "$m"/{bin,sbin,etc/modprobe.d,dev,conf/conf.d,scripts/local-top,run,usr/lib}
cp /bin/busybox "$m/bin/busybox"
for a in sh mount switch_root; do ln -s busybox "$m/bin/$a"; done
ln -s ../bin/busybox "$m/sbin/modprobe"
printf '#!/bin/sh\nexec /bin/sh\n' > "$m/init"; chmod 755 "$m/init"
echo "options nbd max_part=15" > "$m/etc/modprobe.d/nbd.conf"
echo "ROOT=/dev/nbd0" > "$m/conf/conf.d/nbd"; chmod 600 "$m/conf/conf.d/nbd"
: > "$m/conf/empty"
printf 'abc' > "$m/usr/lib/a-name-of-odd-length.x"
printf 'linked' > "$m/scripts/local-top/nbd"; ln "$m/scripts/local-top/nbd" "$m/scripts/nbd-hardlink"
root=no
if [ "$(id -u)" = 0 ]; then mknod -m 600 "$m/dev/console" c 5 1; mknod -m 666 "$m/dev/null" c 1 3; root=yes; fi
(cd "$m" && find . | sort | cpio -o -H newc --quiet --reproducible) > "$work/main.cpio"

# What GNU cpio lists for both parts: mode, size (or major, minor), path.
# cpio -tv fields: mode nlink user group size (or "major, minor") month day time-or-year path...
norm() { awk '{ if ($1 ~ /^[cb]/) { s=$5 $6; i=10 } else { s=$5; i=9 } ; p=$i; for (j=i+1; j<=NF; j++) p = p " " $j; print $1, s, p }'; }
{ cpio -tv --quiet < "$work/early.cpio"; cpio -tv --quiet < "$work/main.cpio"; } | norm | sed 's| \./| |; /^d[^ ]* [0-9,]* \.$/d' > "$work/expected"

for comp in zstd gzip xz lz4; do
  case $comp in
    zstd) zstd -q -9 -c "$work/main.cpio" > "$work/main.c" ;;
    gzip) gzip -n -9 -c "$work/main.cpio" > "$work/main.c" ;;
    xz) xz --check=crc32 -c "$work/main.cpio" > "$work/main.c" ;;
    lz4) lz4 -l -9 -q -c "$work/main.cpio" > "$work/main.c" ;;
  esac
  cat "$work/early.cpio" "$work/main.c" > "$work/initrd.img"

  # ls: same entries, modes and sizes as cpio -tv of the two parts.
  "$NBDBOOT" initramfs ls "$work/initrd.img" > "$work/ls.$comp"
  awk '{ if ($1 ~ /^[cb]/) { s=$5 $6; i=7 } else { s=$5; i=6 } ; p=$i; for (j=i+1; j<=NF; j++) p = p " " $j; print $1, s, p }' "$work/ls.$comp" \
    | sed 's| \./| |; /^d[^ ]* [0-9,]* \.$/d' > "$work/got"
  diff "$work/expected" "$work/got" || fail "$comp: initramfs ls differs from cpio -tv"
  grep -q ' kernel/x86/microcode/GenuineIntel.bin$' "$work/ls.$comp" || fail "$comp: early member not listed"
  grep -q 'bin/sh -> busybox$' "$work/ls.$comp" || fail "$comp: symlink target not shown"

  # extract: the tree comes back.
  out=$work/out.$comp
  "$NBDBOOT" initramfs extract "$work/initrd.img" "$out" > "$work/extract.log" 2>&1 || { cat "$work/extract.log"; fail "$comp: extract failed"; }
  cmp "$out/kernel/x86/microcode/GenuineIntel.bin" "$work/early/kernel/x86/microcode/GenuineIntel.bin" || fail "$comp: early file differs"
  (cd "$m" && find . -not -type d | sort | while read -r f; do stat -c '%A %s %h %N' "$f"; done) > "$work/tree.src"
  (cd "$out" && find . -not -type d -not -path './kernel/*' | sort | while read -r f; do stat -c '%A %s %h %N' "$f"; done) > "$work/tree.out"
  diff "$work/tree.src" "$work/tree.out" || fail "$comp: extracted tree differs (mode, size, links or symlink targets)"
  cmp "$out/bin/busybox" /bin/busybox || fail "$comp: bin/busybox differs"
  [ "$(stat -c %i "$out/scripts/local-top/nbd")" = "$(stat -c %i "$out/scripts/nbd-hardlink")" ] || fail "$comp: hard link lost"
  [ "$(stat -c %a "$out/conf/conf.d")" = 755 ] || fail "$comp: directory mode lost"
  echo "$comp: ls and extract OK ($(stat -c %s "$work/initrd.img") bytes, $(wc -l < "$work/ls.$comp") entries)"
done

# As an ordinary user, device nodes are skipped with a note.
if [ $root = yes ] && command -v setpriv >/dev/null; then
  mkdir "$work/user"; chown 65534:65534 "$work/user"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$NBDBOOT" initramfs extract "$work/initrd.img" "$work/user/x" \
    > "$work/user.log" 2>&1 || { cat "$work/user.log"; fail "extract as a user failed"; }
  grep -q 'skipped device node dev/console' "$work/user.log" || fail "no note for the skipped device node: $(cat "$work/user.log")"
  [ ! -e "$work/user/x/dev/console" ] && [ -f "$work/user/x/bin/busybox" ] || fail "user extract: wrong result"
  echo "user extract: device nodes skipped with a note"
fi

# A ".." path is refused and nothing is written.
mkdir -p "$work/evil/a"; echo pwned > "$work/evil/x"
(cd "$work/evil/a" && printf '%s\n' ../x | cpio -o -H newc --quiet) > "$work/evil.cpio"
if "$NBDBOOT" initramfs extract "$work/evil.cpio" "$work/evil-out/inner" 2> "$work/evil.err"; then fail "\"..\" path extracted"; fi
grep -q 'refusing' "$work/evil.err" || fail "no refusal message: $(cat "$work/evil.err")"
[ ! -e "$work/evil-out/x" ] || fail "\"..\" escaped the extraction directory"

# Not an initramfs: a clear error, no crash.
head -c 1000 /bin/busybox > "$work/notcpio"
if "$NBDBOOT" initramfs ls "$work/notcpio" 2> "$work/err"; then fail "ELF accepted as initramfs"; fi
grep -q 'unrecognised data at offset 0' "$work/err" || fail "unclear error: $(cat "$work/err")"
head -c 3000 "$work/main.cpio" > "$work/cut"
if "$NBDBOOT" initramfs ls "$work/cut" 2> "$work/err"; then fail "truncated archive accepted"; fi
grep -q 'truncated' "$work/err" || fail "unclear error: $(cat "$work/err")"
echo "PASS"
