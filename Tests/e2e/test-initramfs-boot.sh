#!/usr/bin/env bash
# The kernel accepts our image: QEMU boots the Debian kernel with an initramfs from
# `nbdboot initramfs build`, and the kernel unpacks it, opens /dev/console for /init, and
# loads every module of /etc/nbdboot/modules in the listed order with finit_module(2) and
# the listed parameters (the contract with the static init).
#
# /init here is a STAND-IN: a 40-line static C program (musl-gcc) written below, which
# loads the list, prints one line per module, checks nbd's max_part and powers off. It is
# not nbdboot's static init; /sbin/nbd-client is an empty stand-in (not run).
# Run from the repository root.
set -euo pipefail
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
[ -x "$NBDBOOT" ] || { echo "no $NBDBOOT: run make build first"; exit 1; }
command -v musl-gcc >/dev/null || { echo "musl-gcc missing: apt-get install musl-tools"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing"; exit 1; }
. ~/.cache/nbdboot/kernel.env
work=$(mktemp -d /tmp/test-initramfs-boot.XXXXXX)
qemu_pid=
cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/console.log" ] && tail -40 "$work/console.log"; exit 1; }

cat > "$work/init.c" <<'EOF'
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    printf("stand-in init: pid %d, console ok\n", getpid());
    FILE *list = fopen("/etc/nbdboot/modules", "r");
    if (!list) { printf("stand-in init: no /etc/nbdboot/modules: %s\n", strerror(errno)); goto out; }
    char line[1024];
    while (fgets(line, sizeof line, list)) {
        line[strcspn(line, "\n")] = 0;
        char *params = strchr(line, ' ');
        if (params) *params++ = 0; else params = "";
        int fd = open(line, O_RDONLY | O_CLOEXEC);
        long r = fd < 0 ? -1 : syscall(SYS_finit_module, fd, params, 0);
        printf("module %s [%s]: %s\n", line, params, r == 0 ? "loaded" : strerror(errno));
        if (fd >= 0) close(fd);
    }
    mount("sysfs", "/sys", "sysfs", 0, 0);
    char buf[32] = "";
    FILE *p = fopen("/sys/module/nbd/parameters/max_part", "r");
    if (p) { if (fgets(buf, sizeof buf, p)) buf[strcspn(buf, "\n")] = 0; fclose(p); }
    printf("nbd max_part=%s, /sys/block/nbd0 %s\n", buf, access("/sys/block/nbd0", F_OK) == 0 ? "present" : "absent");
out:
    printf("stand-in init: done\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
EOF
musl-gcc -static -Os -o "$work/init" "$work/init.c"
: > "$work/nbd-client"
"$NBDBOOT" initramfs build --kernel-version "$NBDBOOT_KVER" --module-root "$NBDBOOT_MODROOT" \
  --init "$work/init" --nbd-client "$work/nbd-client" --output "$work/initrd.img"

qemu-system-x86_64 -M q35 -m 512 -smp 1 -accel tcg -display none -serial "file:$work/console.log" -no-reboot \
  -kernel "$NBDBOOT_VMLINUZ" -initrd "$work/initrd.img" -append 'console=ttyS0 panic=-1 quiet' \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0 </dev/null &
qemu_pid=$!
for _ in $(seq 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$qemu_pid" 2>/dev/null; then fail "QEMU still running after 120 s"; fi
wait "$qemu_pid" || true; qemu_pid=

log=$work/console.log
grep -a 'stand-in init: pid 1, console ok' "$log" || fail "/init did not run as PID 1 with a console"
grep -a '^module ' "$log" | tr -d '\r'
modules=$(grep -ac '^module ' "$log")
[ "$modules" = 18 ] || fail "expected 18 module lines, got $modules"
# Every module loads, except crc32c-intel on a CPU without SSE4.2 (ENODEV), which is why
# crc32c_generic comes first.
bad=$(grep -a '^module ' "$log" | tr -d '\r' | grep -v ': loaded$' | grep -v 'crc32c-intel.ko \[\]: No such device$' || true)
[ -z "$bad" ] || fail "modules failed to load: $bad"
grep -a 'nbd max_part=15, /sys/block/nbd0 present' "$log" || fail "nbd not loaded with max_part=15"
grep -a 'stand-in init: done' "$log" >/dev/null || fail "init did not finish"
echo "initrd size $(stat -c %s "$work/initrd.img") bytes"
echo "PASS"
