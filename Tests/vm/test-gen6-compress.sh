#!/usr/bin/env bash
# The kernel unpacks every compression `nbdboot initramfs build` writes, and an early microcode
# archive in front of the compressed one: QEMU boots Debian's kernel once per image (gzip, xz,
# lz4, none, and zstd behind an early archive), with a STAND-IN /init (a small static C program
# written below, not nbdboot's init) that prints what the kernel unpacked and powers off.
# The check per boot: /init ran as PID 1, the main archive's files are there (the module list,
# the kernel release), the early archive's microcode files are there when one was built, and
# the kernel did not log "Initramfs unpacking failed". Run from the repository root.
set -euo pipefail
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
[ -x "$NBDBOOT" ] || { echo "no $NBDBOOT: run make build first"; exit 1; }
command -v musl-gcc >/dev/null || { echo "musl-gcc missing: apt-get install musl-tools"; exit 1; }
. ~/.cache/nbdboot/kernel.env
work=$(mktemp -d /tmp/test-gen6-compress.XXXXXX)
qemu_pid=
cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -n "${log:-}" ] && [ -f "$log" ] && tail -30 "$log"; exit 1; }

cat > "$work/init.c" <<'CEOF'
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>
static long size(const char *p) { FILE *f = fopen(p, "r"); long n = -1; if (f) { fseek(f, 0, SEEK_END); n = ftell(f); fclose(f); } return n; }
int main(void) {
    char rel[128] = "";
    FILE *f = fopen("/etc/nbdboot/kernel-release", "r");
    if (f) { if (!fgets(rel, sizeof rel, f)) rel[0] = 0; fclose(f); }
    printf("STANDIN pid=%d modules-list=%ld release=%s", getpid(), size("/etc/nbdboot/modules"), rel);
    printf("STANDIN microcode intel=%ld amd=%ld\n", size("/kernel/x86/microcode/GenuineIntel.bin"),
           size("/kernel/x86/microcode/AuthenticAMD.bin"));
    fflush(stdout); sync(); reboot(RB_POWER_OFF); return 0;
}
CEOF
musl-gcc -static -Os -o "$work/init" "$work/init.c"
: > "$work/nbd-client"
mkdir -p "$work/fw/amd-ucode" "$work/fw/intel-ucode"
# Not real microcode: the loaders check the container magic / header and skip data that does not match.
printf 'not-amd-microcode' > "$work/fw/amd-ucode/microcode_amd_fam17h.bin"
printf 'not-intel-microcode' > "$work/fw/intel-ucode/06-8e-09"

boot() {  # NAME BUILD-ARGS...
  local name=$1; shift
  "$NBDBOOT" initramfs build --kernel-version "$NBDBOOT_KVER" --module-root "$NBDBOOT_MODROOT" \
    --init "$work/init" --nbd-client "$work/nbd-client" --output "$work/$name.img" "$@" > "$work/$name.summary"
  log=$work/$name.log
  qemu-system-x86_64 -M q35 -m 512 -smp 1 -accel tcg -display none -serial "file:$log" -no-reboot \
    -kernel "$NBDBOOT_VMLINUZ" -initrd "$work/$name.img" -append 'console=ttyS0 panic=-1' \
    -net none </dev/null &
  qemu_pid=$!
  for _ in $(seq 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$qemu_pid" 2>/dev/null; then fail "$name: QEMU still running after 120 s"; fi
  wait "$qemu_pid" || true; qemu_pid=
  ! grep -a 'Initramfs unpacking failed' "$log" || fail "$name: the kernel could not unpack the image"
  grep -aq "STANDIN pid=1 modules-list=[1-9][0-9]* release=$NBDBOOT_KVER" "$log" || fail "$name: /init did not see the main archive"
  echo "$name: $(stat -c %s "$work/$name.img") bytes, $(grep -a 'STANDIN microcode' "$log" | tr -d '\r')"
}

for comp in gzip xz lz4 none; do
  boot "$comp" --compress "$comp"
  grep -aq 'STANDIN microcode intel=-1 amd=-1' "$log" || fail "$comp: microcode files without --microcode"
done
boot early-zstd --compress zstd --microcode-dir "$work/fw"
grep -aq 'STANDIN microcode intel=19 amd=17' "$log" || fail "early archive not unpacked by the kernel"
echo PASS
