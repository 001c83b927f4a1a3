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
grep -q "18 modules" "$work/summary" || fail "summary does not say 18 modules"
[ "$(stat -c %s "$work/a.img")" -le 2000000 ] || fail "the qemu-virtio zstd image is over 2 MB (issue 6's limit)"

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
expected="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net nbd crc32c_generic crc32c_intel jbd2 mbcache crc16 ext4 overlay squashfs loop "
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

# 5. Every compression holds the same archive, with the magic the kernel expects, and is
# reproducible (two builds, same bytes); SOURCE_DATE_EPOCH sets every mtime.
for comp in gzip xz lz4 none; do
  build --output "$work/$comp.1" --compress $comp >/dev/null
  build --output "$work/$comp.2" --compress $comp >/dev/null
  cmp "$work/$comp.1" "$work/$comp.2" || fail "two $comp builds differ"
  magic=$(head -c6 "$work/$comp.1" | od -An -tx1 | tr -d ' \n')
  case $comp in
    gzip) [[ $magic == 1f8b* ]] && gzip -d -c "$work/$comp.1" > "$work/$comp.cpio" ;;
    xz) [[ $magic == fd377a585a00 ]] && xz -d -c "$work/$comp.1" > "$work/$comp.cpio" &&
          xz --robot --list "$work/$comp.1" | grep -q $'^file\t.*\tCRC32\t' ;;
    lz4) [[ $magic == 02214c18* ]] && lz4 -d -q -c "$work/$comp.1" > "$work/$comp.cpio" ;;
    none) [[ $magic == 303730373031 ]] && cp "$work/$comp.1" "$work/$comp.cpio" ;;
  esac || fail "$comp: wrong format (magic $magic; xz needs CRC32 checks, lz4 the legacy frame)"
  cmp "$work/$comp.cpio" "$work/a.cpio" || fail "$comp image holds another archive than the zstd one"
  echo "$comp: $(stat -c %s "$work/$comp.1") bytes, reproducible"
done
SOURCE_DATE_EPOCH=1700000000 build --output "$work/e.img" --compress none >/dev/null
[ "$(cpio -tv --quiet < "$work/e.img" | grep -vc 'Nov 14  2023')" = 0 ] || fail "SOURCE_DATE_EPOCH not applied to every entry"

# 5b. The kernel's configuration decides: an option the kernel lacks fails the build, naming it.
sed 's/^CONFIG_RD_LZ4=y/# CONFIG_RD_LZ4 is not set/' "$MODROOT/boot/config-$KVER" > "$work/config-nolz4"
if build --output "$work/bad.img" --compress lz4 --kernel-config "$work/config-nolz4" 2> "$work/err"; then fail "lz4 accepted for a kernel without CONFIG_RD_LZ4"; fi
grep -q "CONFIG_RD_LZ4 is not set in $work/config-nolz4" "$work/err" || fail "unclear error: $(cat "$work/err")"
[ ! -e "$work/bad.img" ] || fail "refused build left an output file"
if build --output "$work/bad.img" --compress bzip2 2> "$work/err"; then fail "bzip2 accepted"; fi
grep -q "zstd, gzip, xz, lz4, none" "$work/err" || fail "unclear error: $(cat "$work/err")"

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

# 8b. --with-busybox: /bin/busybox (the static one) and /bin/sh; the qemu-virtio image stays under 2 MB.
build --output "$work/bb.img" --with-busybox >/dev/null
zstd -d -q -c "$work/bb.img" | cpio -i --quiet --to-stdout bin/busybox | cmp - /bin/busybox || fail "bin/busybox is not /bin/busybox"
zstd -d -q -c "$work/bb.img" | cpio -tv --quiet > "$work/bb.list"
grep -qE '^lrwxrwxrwx .* bin/sh -> busybox$' "$work/bb.list" || fail "no bin/sh -> busybox"
if build --output "$work/bad.img" --busybox /bin/ls 2> "$work/err"; then fail "dynamic busybox accepted"; fi
grep -q "dynamically linked" "$work/err" || fail "unclear error: $(cat "$work/err")"
[ "$(stat -c %s "$work/bb.img")" -le 2000000 ] || fail "qemu-virtio image with busybox is over 2 MB"

# 8c. --microcode: an uncompressed early archive first (GNU cpio reads it, padded to 512 bytes), then
# the compressed main archive; without microcode the error names the packages and --microcode-dir.
mkdir -p "$work/fw/intel-ucode" "$work/fw/amd-ucode"
head -c 4096 /bin/busybox > "$work/fw/intel-ucode/06-8e-09"; head -c 1000 /bin/ls > "$work/fw/intel-ucode/06-9e-0a"
head -c 2048 /bin/cat > "$work/fw/amd-ucode/microcode_amd_fam17h.bin"
build --output "$work/mc.img" --microcode-dir "$work/fw" > "$work/mc.summary"
build --output "$work/mc2.img" --microcode-dir "$work/fw" >/dev/null
cmp "$work/mc.img" "$work/mc2.img" || fail "two microcode builds differ"
early=$(sed -E 's/.* after a ([0-9]+)-byte early microcode archive.*/\1/' "$work/mc.summary")
[ $((early % 512)) = 0 ] || fail "early archive size $early is not a multiple of 512"
(cd "$work" && mkdir mc.x && cd mc.x && cpio -id --quiet < ../mc.img)
cmp "$work/mc.x/kernel/x86/microcode/GenuineIntel.bin" <(cat "$work/fw/intel-ucode/06-8e-09" "$work/fw/intel-ucode/06-9e-0a") || fail "GenuineIntel.bin"
cmp "$work/mc.x/kernel/x86/microcode/AuthenticAMD.bin" "$work/fw/amd-ucode/microcode_amd_fam17h.bin" || fail "AuthenticAMD.bin"
tail -c +$((early + 1)) "$work/mc.img" | cmp - "$work/a.img" || fail "after the early archive comes a different main archive"
if build --output "$work/bad.img" --microcode-dir "$work/nowhere" 2> "$work/err"; then fail "--microcode without microcode accepted"; fi
grep -q "intel-microcode" "$work/err" && grep -q -- "--microcode-dir" "$work/err" || fail "unclear error: $(cat "$work/err")"

# 8d. --config: the same image from a file; command-line options override it; errors name file, line, key.
cat > "$work/site.toml" <<TOML
# built by the test
kernel_version = "$KVER"
module_root = "$MODROOT"
compress = "gzip"
modules = ["squashfs", "e1000"]
files = ["hello:/etc/hello"]
init = "$(realpath "$init")"
nbd_client = "$(realpath "$client")"
busybox = true
TOML
echo hello > "$work/hello"
"$NBDBOOT" initramfs build --config "$work/site.toml" --output "$work/cf.img" >/dev/null
gzip -d -c "$work/cf.img" | cpio -i --quiet --to-stdout etc/hello | grep -qx hello || fail "config files= not applied (relative to the file)"
gzip -d -c "$work/cf.img" | cpio -i --quiet --to-stdout etc/nbdboot/modules | grep -q 'ethernet/intel/e1000/e1000.ko$' || fail "config modules= not applied"
gzip -d -c "$work/cf.img" | cpio -t --quiet > "$work/cf.list"
grep -qx bin/busybox "$work/cf.list" || fail "config busybox= not applied"
"$NBDBOOT" initramfs build --config "$work/site.toml" --output "$work/cf2.img" --compress xz --without-busybox --add-module loop >/dev/null
xz -d -c "$work/cf2.img" | cpio -t --quiet > "$work/cf2.list" || fail "--compress on the command line did not override the file"
! grep -qx bin/busybox "$work/cf2.list" || fail "--without-busybox did not override the file"
grep -qx etc/hello "$work/cf2.list" || fail "--add-module replaced the file's lists instead of adding"
printf 'kernel_version = "%s"\ncompres = "xz"\n' "$KVER" > "$work/bad.toml"
if "$NBDBOOT" initramfs build --config "$work/bad.toml" --output "$work/bad.img" 2> "$work/err"; then fail "unknown key accepted"; fi
grep -q "$work/bad.toml:2: key compres: unknown key" "$work/err" || fail "config error does not name file, line, key: $(cat "$work/err")"

# 8e. generic-nic: every module under kernel/drivers/net/ethernet (lz4 here to keep the test fast).
build --output "$work/gn.img" --profile generic-nic --compress lz4 > "$work/gn.summary"
lz4 -d -q -c "$work/gn.img" | cpio -i --quiet --to-stdout etc/nbdboot/modules > "$work/gn.modules"
want=$(cd "$MODROOT/lib/modules/$KVER" && grep -c '^kernel/drivers/net/ethernet/' modules.dep)
got=$(grep -c "^lib/modules/$KVER/kernel/drivers/net/ethernet/" "$work/gn.modules")
[ "$want" = "$got" ] || fail "generic-nic has $got ethernet modules, modules.dep lists $want"
echo "generic-nic: $(wc -l < "$work/gn.modules") modules ($got ethernet drivers), $(stat -c %s "$work/gn.img") bytes lz4"

# 9. Sizes: with the init/nbd-client above, and with empty ones (modules and skeleton only).
: > "$work/empty"
"$NBDBOOT" initramfs build --kernel-version "$KVER" --module-root "$MODROOT" --init "$work/empty" --nbd-client "$work/empty" \
  --output "$work/modules-only.img" >/dev/null
echo "image size: $(stat -c %s "$work/a.img") bytes zstd ($(stat -c %s "$work/a.cpio") uncompressed) with init=$init"
echo "image size: $(stat -c %s "$work/modules-only.img") bytes zstd, modules and skeleton only (empty init and nbd-client)"
echo "PASS"
