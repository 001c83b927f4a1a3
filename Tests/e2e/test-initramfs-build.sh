#!/usr/bin/env bash
# `nbdboot initramfs build` for the real Debian kernel (kernel.env): the image is a newc
# archive that GNU cpio reads, `nbdboot initramfs ls` lists the same entries, the module
# list is in load order and holds the kernel's own .ko files, two builds are
# byte-identical, depmod runs when modules.dep is missing, and errors name the problem.
#
# /init and /sbin/nbd-client: the static binaries from `make static` (.build/static/) when
# they exist; otherwise STAND-INS, copies of /bin/busybox, so this test does not depend on
# the static build. Their contents do not matter here (nothing is booted).
# Run from the repository root.
set -euo pipefail
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
[ -x "$NBDBOOT" ] || { echo "no $NBDBOOT: run make build first"; exit 1; }
. ~/.cache/nbdboot/kernel.env
KVER=$NBDBOOT_KVER MODROOT=$NBDBOOT_MODROOT
work=$(mktemp -d /tmp/test-initramfs-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

if [ -x .build/static/init ] && [ -x .build/static/nbd-client ]; then
  init=.build/static/init client=.build/static/nbd-client
  echo "using the static binaries from .build/static"
else
  cp /bin/busybox "$work/init"; cp /bin/busybox "$work/client"
  init=$work/init client=$work/client
  echo "no .build/static/{init,nbd-client}: using copies of /bin/busybox as stand-ins"
fi
build() { "$NBDBOOT" initramfs build --kernel-version "$KVER" --module-root "$MODROOT" --init "$init" --nbd-client "$client" "$@"; }

# 1. Build twice: same bytes.
unset SOURCE_DATE_EPOCH
build --output "$work/a.img" | tee "$work/summary"
build --output "$work/b.img" >/dev/null
cmp "$work/a.img" "$work/b.img" || fail "two builds of the same inputs differ"
[ "$(head -c4 "$work/a.img" | od -An -tx1 | tr -d ' ')" = 28b52ffd ] || fail "default compression is not zstd"
grep -q "15 modules" "$work/summary" || fail "summary does not say 15 modules"

# 2. GNU cpio reads it; the entries are exactly the contract, sorted parents first.
zstd -d -q -c "$work/a.img" > "$work/a.cpio"
cpio -t --quiet < "$work/a.cpio" > "$work/cpio-t"
cpio -tv --quiet < "$work/a.cpio" > "$work/cpio-tv"
for d in dev proc sys run tmp newroot sbin etc etc/nbdboot "lib/modules/$KVER"; do
  grep -qE "^drwxr-xr-x +2 root +root .* $d\$" "$work/cpio-tv" || fail "directory $d missing or not 0755"
done
grep -qE '^crw------- +1 root +root +5, +1 .* dev/console$' "$work/cpio-tv" || fail "dev/console is not char 5,1 0600"
grep -qE '^crw-rw-rw- +1 root +root +1, +3 .* dev/null$' "$work/cpio-tv" || fail "dev/null is not char 1,3 0666"
grep -qE '^-rwxr-xr-x .* init$' "$work/cpio-tv" || fail "init is not 0755"
grep -qE '^-rwxr-xr-x .* sbin/nbd-client$' "$work/cpio-tv" || fail "sbin/nbd-client is not 0755"
grep -q ' Jan  1  1970 ' "$work/cpio-tv" || fail "mtime is not 0 without SOURCE_DATE_EPOCH"
awk -F/ '{ p=""; for (i=1;i<NF;i++) { p = p (i>1?"/":"") $i; if (!(p in seen)) { print "parent " p " after " $0; bad=1 } } seen[$0]=1 } END { exit bad }' \
  "$work/cpio-t" || fail "a parent directory comes after its child"

# 3. nbdboot initramfs ls lists the same paths.
"$NBDBOOT" initramfs ls "$work/a.img" > "$work/ls"
awk '{ print $NF }' "$work/ls" | diff - "$work/cpio-t" || fail "initramfs ls and cpio -t disagree"

# 4. The module list: load order, kernel's own files, nbd parameters.
mkdir "$work/x"; (cd "$work/x" && cpio -id --quiet < "$work/a.cpio")
[ "$(cat "$work/x/etc/nbdboot/kernel-release")" = "$KVER" ] || fail "kernel-release is not $KVER"
names=$(awk '{ n=$1; sub(/.*\//, "", n); sub(/\.ko$/, "", n); gsub(/-/, "_", n); printf "%s ", n }' "$work/x/etc/nbdboot/modules")
expected="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net nbd crc32c_generic crc32c_intel jbd2 mbcache crc16 ext4 "
[ "$names" = "$expected" ] || fail "module order: got '$names', expected '$expected'"
grep -qx "lib/modules/$KVER/kernel/drivers/block/nbd.ko max_part=15" "$work/x/etc/nbdboot/modules" || fail "nbd line lacks max_part=15"
# Every hard dependency (modules.dep) is listed before its user, and every file is the kernel's.
while read -r path _; do
  rel=${path#lib/modules/$KVER/}
  cmp -s "$work/x/$path" "$MODROOT/lib/modules/$KVER/$rel" || fail "$path differs from the kernel's file"
  for dep in $(grep "^$rel:" "$MODROOT/lib/modules/$KVER/modules.dep" | cut -d: -f2); do
    grep -q "^lib/modules/$KVER/$dep" <(sed "/^${path//\//\\/}/q" "$work/x/etc/nbdboot/modules") || fail "$dep not before $rel"
  done
done < "$work/x/etc/nbdboot/modules"
cmp -s "$work/x/init" "$init" || fail "init differs from $init"

# 5. gzip and none give the same archive; SOURCE_DATE_EPOCH sets every mtime.
build --output "$work/g.img" --compress gzip >/dev/null
build --output "$work/n.img" --compress none >/dev/null
gzip -d -c "$work/g.img" | cmp - "$work/a.cpio" || fail "gzip image holds another archive"
cmp "$work/n.img" "$work/a.cpio" || fail "uncompressed image differs from the zstd one's content"
SOURCE_DATE_EPOCH=1700000000 build --output "$work/e.img" --compress none >/dev/null
[ "$(cpio -tv --quiet < "$work/e.img" | grep -vc 'Nov 14  2023')" = 0 ] || fail "SOURCE_DATE_EPOCH not applied to every entry"

# 6. --add-module and --add-file.
echo hello > "$work/hello"
build --output "$work/m.img" --compress none --add-module squashfs --add-file "$work/hello:/etc/hello" >/dev/null
cpio -i --quiet --to-stdout etc/hello < "$work/m.img" | grep -qx hello || fail "--add-file content missing"
cpio -i --quiet --to-stdout etc/nbdboot/modules < "$work/m.img" | grep -q 'fs/squashfs/squashfs.ko$' || fail "--add-module squashfs not listed"

# 7. No modules.dep (as in Debian's kernel .deb): depmod runs on a scratch copy.
mini=$work/mini/lib/modules/$KVER
mkdir -p "$mini"
cp "$MODROOT/lib/modules/$KVER"/modules.{builtin,builtin.modinfo,order} "$mini/"
while read -r path _; do
  rel=${path#lib/modules/$KVER/}; mkdir -p "$mini/$(dirname "$rel")"; cp "$MODROOT/lib/modules/$KVER/$rel" "$mini/$rel"
done < "$work/x/etc/nbdboot/modules"
"$NBDBOOT" initramfs build --kernel-version "$KVER" --module-root "$work/mini" --init "$init" --nbd-client "$client" \
  --output "$work/d.img" 2> "$work/d.err" >/dev/null
grep -q depmod "$work/d.err" || fail "no note that depmod ran"
[ ! -e "$mini/modules.dep" ] || fail "depmod wrote into the module root"
# Same files; the load order may differ where depmod's order is free (modules.dep of a
# partial tree lists virtio_pci's independent dependencies in another order), so only the set is compared.
zstd -d -q -c "$work/d.img" | cpio -t --quiet | diff - "$work/cpio-t" || fail "image built via depmod has other files"
diff <(zstd -d -q -c "$work/d.img" | cpio -i --quiet --to-stdout etc/nbdboot/modules | sort) \
  <(sort "$work/x/etc/nbdboot/modules") || fail "image built via depmod has another module set"

# 8. Errors name the problem.
if build --output "$work/bad.img" --add-module no_such_mod 2> "$work/err"; then fail "unknown module accepted"; fi
grep -q no_such_mod "$work/err" || fail "error does not name the module: $(cat "$work/err")"
[ ! -e "$work/bad.img" ] || fail "failed build left an output file"
if "$NBDBOOT" initramfs build --kernel-version 0.0-none --module-root "$MODROOT" --init "$init" --nbd-client "$client" \
  --output "$work/bad.img" 2> "$work/err"; then fail "unknown kernel accepted"; fi
grep -q "$KVER" "$work/err" || fail "error does not list installed kernels: $(cat "$work/err")"
if [ ! -e .build/static/init ] && [ ! -e /usr/lib/nbdboot/init ]; then
  if "$NBDBOOT" initramfs build --kernel-version "$KVER" --module-root "$MODROOT" --output "$work/bad.img" 2> "$work/err"; then
    fail "build without a static init succeeded"; fi
  grep -q "make static" "$work/err" || fail "missing-init error does not say make static: $(cat "$work/err")"
fi

# 9. Sizes: with the init/nbd-client above, and with empty ones (modules and skeleton only).
: > "$work/empty"
"$NBDBOOT" initramfs build --kernel-version "$KVER" --module-root "$MODROOT" --init "$work/empty" --nbd-client "$work/empty" \
  --output "$work/modules-only.img" >/dev/null
echo "image size: $(stat -c %s "$work/a.img") bytes zstd ($(stat -c %s "$work/a.cpio") uncompressed) with init=$init"
echo "image size: $(stat -c %s "$work/modules-only.img") bytes zstd, modules and skeleton only (empty init and nbd-client)"
echo "PASS"
