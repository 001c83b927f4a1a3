# Scenarios (b) and (c) of issue 5, shared by test-swap-pressure.sh and
# test-swap-restart.sh (sourced after Tests/vm/lib.sh): a station with
# 128 MiB of RAM boots its root over NBD (nbdboot serve, nbdboot's initramfs,
# static init and client), and its root's /sbin/init connects a second
# export as swap with
#     /sbin/nbd-client 10.0.2.2 PORT /dev/nbd1 -N swap -swap -persist
# (the static client, copied into the root image), then mkswap + swapon
# (busybox). The payload runs from a tmpfs copy of busybox: it fills another
# tmpfs with SWAP_FILL_MIB (3 x RAM) of deterministic data from a small
# static generator (every 8-byte word depends on the chunk and its offset,
# so a page read back from the wrong place is caught), prints "SWAP filled"
# with the swap in use, then re-generates every chunk and compares (cmp),
# checks the kernel log and powers off. In (c) the host kills the server
# when it sees "SWAP filled", while most of the data is swapped out, and the
# comparison then has to wait for the monitors to reconnect.
#
# Guest output: "SWAP <event> ..." lines, and finally SWAP-PASS or SWAP-FAIL.
# Kernel command line: swap_port=PORT swap_fill=MIB.

: "${SWAP_FILL_MIB:=384}"
SWAP_CLIENT_PATTERN='/sbin/nbd-client 10.0.2.2 $port /dev/nbd1 -N swap -swap -persist'

# swap_build_generator OUT: the static data generator for the station.
swap_build_generator() {
  cat >"$VM_WORK/pattern.c" <<'C'
/* pattern SEED MIB: writes MIB MiB to stdout; word k of chunk SEED is
   splitmix64(SEED << 40 | k), so every word is different and known. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    uint64_t seed = strtoull(argv[1], 0, 10), words = strtoull(argv[2], 0, 10) << 17, k = 0;
    static uint64_t buf[8192];
    while (k < words) {
        size_t n = 0;
        for (; n < 8192 && k < words; n++, k++) {
            uint64_t z = (seed << 40 | k) + 0x9e3779b97f4a7c15ULL;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            buf[n] = z ^ (z >> 31);
        }
        char *p = (char *)buf; size_t left = n * 8;
        while (left) { ssize_t w = write(1, p, left); if (w <= 0) return 1; p += w; left -= (size_t)w; }
    }
    return 0;
}
C
  vm_compile_static "$1" "$VM_WORK/pattern.c"
}

# swap_build_root OUT: 64 MiB ext4 root with busybox, the static client,
# the generator and the payload.
swap_build_root() {
  local out=$1 stage=$VM_WORK/root-stage
  rm -rf "$stage"; mkdir -p "$stage"/{bin,sbin,proc,sys,dev,run,tmp,safe,fill}
  install -m 755 /bin/busybox "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  install -m 755 "$NBDBOOT_STATIC/nbd-client" "$stage/sbin/nbd-client"
  swap_build_generator "$stage/bin/pattern"
  cat >"$stage/sbin/init" <<'INIT'
#!/bin/busybox sh
[ -e /proc/mounts ] || /bin/busybox mount -t proc proc /proc
[ -d /sys/block ] || /bin/busybox mount -t sysfs sysfs /sys
[ -e /dev/console ] || /bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
arg() { /bin/busybox tr ' ' '\n' </proc/cmdline | /bin/busybox sed -n "s/^$1=//p" | /bin/busybox tail -1; }
port=$(arg swap_port)
# The swap device, as a station's init would attach it.
/sbin/nbd-client 10.0.2.2 $port /dev/nbd1 -N swap -swap -persist || echo "SWAP-FAIL nbd-client exited $?"
# Everything else runs from a tmpfs, so an outage of the root cannot stop
# the payload from reporting.
/bin/busybox mount -t tmpfs -o size=16m tmpfs /safe
/bin/busybox cp /bin/busybox /bin/pattern /payload.sh /safe/
/bin/busybox mkdir /safe/bin
/safe/busybox --install -s /safe/bin
/bin/busybox mv /safe/pattern /safe/bin/pattern
exec /safe/busybox sh /safe/payload.sh
INIT
  cat >"$stage/payload.sh" <<'PAYLOAD'
export PATH=/safe/bin
say() { echo "SWAP $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
fill=$(arg swap_fill); chunk=4
fail() { echo "SWAP-FAIL $*"; dmesg | tail -30; poweroff -f; }
kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
say ram $(( $(kb MemTotal) / 1024 )) MiB
[ "$(cat /sys/block/nbd1/size)" -gt 0 ] || fail "nbd1 is not connected"
mkswap /dev/nbd1 >/dev/null || fail "mkswap /dev/nbd1"
swapon /dev/nbd1 || fail "swapon /dev/nbd1"
say swap-on $(grep nbd1 /proc/swaps)
# The swap monitor: the process whose command line names /dev/nbd1.
mon=""
for p in /proc/[0-9]*; do
  tr '\0' ' ' <$p/cmdline 2>/dev/null | grep -q 'nbd1 -N swap' && mon=${p#/proc/}
done
[ -n "$mon" ] || fail "no resident nbd-client for /dev/nbd1"
say monitor pid=$mon $(grep VmLck /proc/$mon/status) oom_score_adj=$(cat /proc/$mon/oom_score_adj)
mount -t tmpfs -o size=$((fill + 32))m tmpfs /fill || fail "tmpfs"
start=$(cut -d. -f1 /proc/uptime)
i=0
while [ $((i * chunk)) -lt $fill ]; do
  i=$((i + 1))
  pattern $i $chunk >/fill/c$i || fail "writing chunk $i"
done
used=$(( ($(kb SwapTotal) - $(kb SwapFree)) / 1024 ))
say filled $((i * chunk)) MiB in $(( $(cut -d. -f1 /proc/uptime) - start )) s, swap used $used MiB
# (c): the host kills the server now; give it a moment before reading back.
[ "$(arg swap_pause)" ] && sleep "$(arg swap_pause)"
start=$(cut -d. -f1 /proc/uptime)
bad=""
j=0
while [ $j -lt $i ]; do
  j=$((j + 1))
  pattern $j $chunk | cmp -s - /fill/c$j || bad="$bad c$j"
done
say verified $i chunks in $(( $(cut -d. -f1 /proc/uptime) - start )) s${bad:+, bad:$bad}
errs=$(dmesg | grep -E 'I/O error|Read-error on swap|Write-error on swap|Out of memory|Killed process|EXT4-fs error|Remounting' || true)
[ -n "$errs" ] && echo "$errs" | sed 's/^/SWAP dmesg-error /'
dmesg | grep 'nbd-client' | sed 's/^/SWAP dmesg-client /'
if [ -z "$bad" ] && [ -z "$errs" ] && [ "$used" -ge $((fill / 2)) ]; then
  echo "SWAP-PASS filled=$((i * chunk)) swapused=$used"
else
  echo "SWAP-FAIL bad=[${bad# }] swapused=$used (expected at least $((fill / 2)))"
fi
poweroff -f
PAYLOAD
  chmod 755 "$stage/sbin/init"
  find "$stage" -exec touch -h -d @0 {} +
  mke2fs -q -F -t ext4 -d "$stage" -L swaptest -m 0 "$out" 64M || vm_die "mke2fs could not make $out"
}

# swap_prepare: root image, a sparse swap export (SWAP_FILL_MIB + 128 MiB),
# the initramfs.
swap_prepare() {
  swap_build_root "$VM_WORK/root.img"
  truncate -s $((SWAP_FILL_MIB + 128))M "$VM_WORK/swap.img"
  build_initramfs "$VM_WORK/initrd"
}

# swap_check LOG: the verdict lines, then the assertions shared by (b) and (c).
swap_check() {
  local log=$1 fail=0
  grep -aE '^SWAP (ram|swap-on|monitor|filled|verified|dmesg-error)|^SWAP-' "$log" | tr -d '\r' | sed 's/^/    /' >&2 || true
  grep -aq '^SWAP monitor .*VmLck:[[:space:]]*[1-9].* oom_score_adj=-1000' "$log" ||
    { vm_log "FAIL: the swap device's nbd-client is not locked in memory with oom_score_adj -1000"; fail=1; }
  grep -aq 'nbd-client: /dev/nbd1 (-swap): monitor locked in memory' "$log" ||
    { vm_log "FAIL: the client did not log that it locked itself (-swap)"; fail=1; }
  # The root's monitor (started by the initramfs without -swap) must lock
  # itself once the system swaps, or it can be swapped out to nbd1.
  grep -aq 'nbd-client: /dev/nbd0: the system swaps, monitor locked in memory' "$log" ||
    { vm_log "FAIL: the root device's monitor did not lock itself when swap came on"; fail=1; }
  grep -aq '^SWAP-PASS' "$log" || { vm_log "FAIL: no SWAP-PASS on the console ($log)"; tr -d '\r' <"$log" | tail -30 | sed 's/^/    | /' >&2; fail=1; }
  return $fail
}
