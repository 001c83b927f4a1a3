#!/usr/bin/env bash
# The distribution hooks (initramfs/hooks): the NBD root grammar in POSIX sh
# (nbdboot-lib.sh) against a table of command lines, under dash and busybox sh (the shells
# of Debian's initramfs); the initramfs-tools local-top script run whole with stand-ins for
# initramfs-tools' functions and for the client (it prints the command it would run); the
# dracut value parser; then a REAL mkinitramfs (initramfs-tools 0.142, from its .deb, in a
# private mount namespace as test-initramfs-distro.sh does) with the hook installed the way
# `make install` lays it out: the image must hold nbdboot's static client as /sbin/nbd-client,
# the local-top script in ORDER, the grammar, nbd.ko and its max_part option, and no Debian
# local-top/nbd. Run from the repository root.
set -euo pipefail
H=initramfs/hooks
work=$(mktemp -d /tmp/test-initramfs-hooks.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
shells=(dash "busybox sh")

# 1. nbdroot=/root=/nbddev= -> client arguments and mount device. Columns: command line | DHCP
# ROOTSERVER | DHCP ROOTPATH | expected "ARGS => MOUNTDEV" or "ERROR: words of the message".
cat > "$work/cases" <<'CASES'
nbdroot=10.0.2.2/root|||10.0.2.2 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=10.0.2.2:10810/root ip=dhcp|||10.0.2.2 10810 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=10.0.2.2:/opt/ltsp/i386|||10.0.2.2 10809 /dev/nbd0 -N /opt/ltsp/i386 -systemd-mark -persist => /dev/nbd0
nbdroot=[2001:db8::1]:10810/img|||2001:db8::1 10810 /dev/nbd0 -N img -systemd-mark -persist => /dev/nbd0
nbdroot=[fe80::1]/img|||fe80::1 10809 /dev/nbd0 -N img -systemd-mark -persist => /dev/nbd0
nbdroot=[fe80::1]:/img|||fe80::1 10809 /dev/nbd0 -N /img -systemd-mark -persist => /dev/nbd0
nbdroot=10.0.2.2,root|||10.0.2.2 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=10.0.2.2,root,nbd3|||10.0.2.2 10809 /dev/nbd3 -N root -systemd-mark -persist => /dev/nbd3
nbdroot=10.0.2.2,root,nbd3 root=/dev/nbd1p2|||10.0.2.2 10809 /dev/nbd1 -N root -systemd-mark -persist => /dev/nbd1p2
nbdroot=10.0.2.2/root root=/dev/nbd0p1|||10.0.2.2 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0p1
nbdroot=10.0.2.2/root nbddev=/dev/nbd2|||10.0.2.2 10809 /dev/nbd2 -N root -systemd-mark -persist => /dev/nbd2
nbdroot=10.0.2.2/root nbddev=/dev/nbd2 root=/dev/nbd4|||10.0.2.2 10809 /dev/nbd4 -N root -systemd-mark -persist => /dev/nbd4
nbdroot=10.0.2.2/root root=LABEL=station|||10.0.2.2 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=/root|10.0.2.9||10.0.2.9 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=:10811/root|10.0.2.9||10.0.2.9 10811 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=dhcp,root|10.0.2.9||10.0.2.9 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=dhcp|10.0.2.9|10.0.2.7:10812/fromdhcp|10.0.2.7 10812 /dev/nbd0 -N fromdhcp -systemd-mark -persist => /dev/nbd0
nbdroot=|10.0.2.9|/fromdhcp|10.0.2.9 10809 /dev/nbd0 -N fromdhcp -systemd-mark -persist => /dev/nbd0
nbdroot=nbd://10.0.2.2/root|||10.0.2.2 10809 /dev/nbd0 -N root -systemd-mark -persist => /dev/nbd0
nbdroot=nbd://server.lan:10813/a/b|||server.lan 10813 /dev/nbd0 -N a/b -systemd-mark -persist => /dev/nbd0
nbdroot=nbd://[2001:db8::5]:10814/img|||2001:db8::5 10814 /dev/nbd0 -N img -systemd-mark -persist => /dev/nbd0
nbdroot=nbd://10.0.2.2|||10.0.2.2 10809 /dev/nbd0 -systemd-mark -persist => /dev/nbd0
nbdroot=10.0.2.2|||ERROR: nbdroot=10.0.2.2: there is no export name
nbdroot=10.0.2.2:99999/root|||ERROR: the port "99999" is not a number from 1 to 65535
nbdroot=10.0.2.2:10810|||ERROR: there is no /NAME after the port
nbdroot=10.0.2.2/|||ERROR: the export name after / is empty
nbdroot=10.0.2.2,|||ERROR: the export name (second field) is empty
nbdroot=a,b,c,d|||ERROR: more than 3 fields
nbdroot=10.0.2.2,root,sda|||ERROR: the third field "sda" is not an NBD device
nbdroot=[fe80::1/img|||ERROR: the IPv6 address has no closing ]
nbdroot=nbds://10.0.2.2/root|||ERROR: only nbd:// URIs are supported
nbdroot=nbd://10.0.2.2:x/root|||ERROR: the port "x"
nbdroot=nbd://10.0.2.2/a%20b|||ERROR: percent escapes
nbdroot=10.0.2.2/root root=/dev/nbd0p0|||ERROR: root=/dev/nbd0p0: not an NBD device or partition name
nbdroot=10.0.2.2/root nbddev=/dev/sda|||ERROR: nbddev=/dev/sda: not an NBD device name
nbdroot=dhcp|10.0.2.9||ERROR: option 17
nbdroot=/root|||ERROR: no boot server is known
nbdroot=dhcp|10.0.2.9|nonsense|ERROR: root-path=nonsense: there is no export name
CASES
cat > "$work/run-case.sh" <<'RUN'
. "$1"
nbdboot_parse_cmdline "$2"
if nbdboot_resolve "$3" "$4"; then echo "$(nbdboot_client_args) => $nbdboot_mount_device"; else echo "ERROR: $nbdboot_error"; fi
RUN
n=0
for sh in "${shells[@]}"; do
  while IFS='|' read -r cmdline server rootpath want; do
    got=$($sh "$work/run-case.sh" "$H/nbdboot-lib.sh" "$cmdline" "$server" "$rootpath")
    case $want in
      ERROR:*) [[ $got == ERROR:* && $got == *"${want#ERROR: }"* ]] || fail "$sh: '$cmdline' (server '$server', root-path '$rootpath'): got '$got', want an error with '${want#ERROR: }'" ;;
      *) [ "$got" = "$want" ] || fail "$sh: '$cmdline' (server '$server', root-path '$rootpath'): got '$got', want '$want'" ;;
    esac
    n=$((n + 1))
  done < "$work/cases"
done
echo "nbdroot grammar: $n cases passed under ${shells[*]}"

# 2. dracut values: root=nbd:... / netroot=nbd:... -> host port name fstype flags client options.
cat > "$work/dcases" <<'CASES'
nbd:10.0.2.2:root|10.0.2.2 10809 root auto  -
nbd:10.0.2.2:10810|10.0.2.2 10810  auto  -
nbd:10.0.2.2:root:ext4|10.0.2.2 10809 root ext4  -
nbd:10.0.2.2:root:ext4:ro,noatime|10.0.2.2 10809 root ext4 ro,noatime -
nbd:10.0.2.2:root:ext4::bs=4096,timeout=30,-C,4|10.0.2.2 10809 root ext4  - -b 4096 -t 30 -C 4
nbd:[fe80::1]:root:xfs|fe80::1 10809 root xfs  -
nbd://10.0.2.2:10815/root|10.0.2.2 10815 root auto  -
nbd:10.0.2.2|ERROR: the second field (port or export name) is missing
nbd::root|ERROR: the server is empty
nbd:10.0.2.2:0|ERROR: the port "0"
nbd:10.0.2.2:root:ext4::bs=1000|ERROR: bs=1000: the block size is 512, 1024, 2048 or 4096
nbd:10.0.2.2:root:ext4::timeout=x|ERROR: timeout=x
nbd:[fe80::1|ERROR: the IPv6 address needs [ ]
iscsi:10.0.2.2:root|ERROR: not an nbd: value
CASES
cat > "$work/run-dcase.sh" <<'RUN'
. "$1"
if nbdboot_parse_dracut "$2" root; then echo "$nbdboot_host $nbdboot_port $nbdboot_name $nbdboot_fstype $nbdboot_flags -${nbdboot_client_opts:+ $nbdboot_client_opts}"; else echo "ERROR: $nbdboot_error"; fi
RUN
n=0
for sh in "${shells[@]}"; do
  while IFS='|' read -r value want; do
    got=$($sh "$work/run-dcase.sh" "$H/nbdboot-lib.sh" "$value")
    case $want in
      ERROR:*) [[ $got == ERROR:* && $got == *"${want#ERROR: }"* ]] || fail "$sh: dracut '$value': got '$got', want an error with '${want#ERROR: }'" ;;
      *) [ "$got" = "$want" ] || fail "$sh: dracut '$value': got '$got', want '$want'" ;;
    esac
    n=$((n + 1))
  done < "$work/dcases"
done
echo "dracut grammar: $n cases passed under ${shells[*]}"

# 3. The local-top script, whole, with stand-ins: initramfs-tools' functions (configure_networking
# sets ROOTSERVER/ROOTPATH as ipconfig's /run/net-*.conf would; panic prints and fails) and a
# client that prints its arguments.
cat > "$work/functions" <<'FN'
log_begin_msg() { :; }
log_end_msg() { :; }
configure_networking() { echo "configure_networking" >> "$TRACE"; ROOTSERVER=$FAKE_ROOTSERVER; ROOTPATH=$FAKE_ROOTPATH; }
panic() { echo "PANIC: $*"; }
modprobe() { echo "modprobe $*" >> "$TRACE"; }
FN
printf '#!/bin/sh\necho "nbd-client $*" >> "$TRACE"\n' > "$work/client"; chmod 755 "$work/client"
localtop() {  # CMDLINE ROOT [ROOTSERVER ROOTPATH]
  printf '%s\n' "$1" > "$work/cmdline"; : > "$work/trace"; rm -f "$work/param.conf"
  for sh in "${shells[@]}"; do
    : > "$work/trace"; rm -f "$work/param.conf"
    ROOT=$2 FAKE_ROOTSERVER=${3:-} FAKE_ROOTPATH=${4:-} TRACE=$work/trace NBDBOOT_LIB=$H/nbdboot-lib.sh \
      NBDBOOT_CMDLINE=$work/cmdline NBDBOOT_FUNCTIONS=$work/functions NBDCLIENT=$work/client \
      NBDBOOT_PARAM_CONF=$work/param.conf $sh $H/initramfs-tools/scripts/local-top/nbdboot > "$work/out" 2>&1 && rc=0 || rc=$?
  done
}
localtop "console=ttyS0 nbdroot=10.0.2.2:10810/root ip=dhcp" ""
[ $rc = 0 ] || fail "local-top failed: $(cat "$work/out")"
grep -qx 'modprobe nbd max_part=15' "$work/trace" && grep -qx configure_networking "$work/trace" || fail "no modprobe/network: $(cat "$work/trace")"
grep -qx "nbd-client 10.0.2.2 10810 /dev/nbd0 -N root -systemd-mark -persist" "$work/trace" || fail "client command: $(cat "$work/trace")"
grep -qx "ROOT=/dev/nbd0" "$work/param.conf" || fail "ROOT not set when root= is absent"
localtop "nbdroot=dhcp root=/dev/nbd0p1" "/dev/nbd0p1" 10.0.2.9 "10.0.2.7:10812/fromdhcp"
grep -qx "nbd-client 10.0.2.7 10812 /dev/nbd0 -N fromdhcp -systemd-mark -persist" "$work/trace" || fail "DHCP root-path: $(cat "$work/trace")"
[ ! -e "$work/param.conf" ] || fail "ROOT overwritten although root= gave it"
localtop "console=ttyS0 root=/dev/sda1" "/dev/sda1"
[ $rc = 0 ] && [ ! -s "$work/trace" ] && [ ! -s "$work/out" ] || fail "not an NBD root, yet the script did something: $(cat "$work/trace" "$work/out")"
localtop "nbdroot=10.0.2.2:0/root" ""
[ $rc != 0 ] && grep -q 'PANIC: nbdboot: nbdroot=10.0.2.2:0/root: the port "0"' "$work/out" || fail "malformed value: rc $rc, $(cat "$work/out")"
! grep -q nbd-client "$work/trace" || fail "client run after a malformed value"
echo "local-top script: connects, sets ROOT, stays silent without nbdroot=, panics naming a bad value"

# 4. A real mkinitramfs with the hook, laid out as `make install` installs it.
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then echo "FAIL: needs root for the mkinitramfs part"; exit 1; fi
[ -x .build/static/nbd-client ] || fail "no .build/static/nbd-client: run make static"
. ~/.cache/nbdboot/kernel.env
DISTRO=$HOME/.cache/nbdboot/distro-root
if [ ! -x "$DISTRO/usr/sbin/mkinitramfs" ]; then
  debs=$HOME/.cache/nbdboot/distro-debs; mkdir -p "$debs"
  (cd "$debs" && apt-get download initramfs-tools-core klibc-utils libklibc dracut-core) || fail "apt-get download failed (offline?)"
  rm -rf "$DISTRO.tmp"; mkdir -p "$DISTRO.tmp"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$DISTRO.tmp"; done
  cp -a "$DISTRO.tmp/lib/." "$DISTRO.tmp/usr/lib/"; rm -rf "$DISTRO"; mv "$DISTRO.tmp" "$DISTRO"
fi
stage=$work/stage   # becomes /usr in the namespace: lib/nbdboot, share/nbdboot, share/initramfs-tools
install -D -m 755 .build/static/nbd-client "$stage/lib/nbdboot/nbd-client"
install -D -m 644 $H/nbdboot-lib.sh "$stage/share/nbdboot/nbdboot-lib.sh"
install -D -m 755 $H/initramfs-tools/hooks/nbdboot "$stage/share/initramfs-tools/hooks/nbdboot"
install -D -m 755 $H/initramfs-tools/scripts/local-top/nbdboot "$stage/share/initramfs-tools/scripts/local-top/nbdboot"
cp -a "$DISTRO/etc/initramfs-tools" "$work/conf"
sed -i 's/^MODULES=.*/MODULES=list/' "$work/conf/initramfs.conf"
unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=$1:$2:$3:/usr" /usr &&
  mount --bind "$3/boot" /boot && shift 3 && exec "$@"' sh "$stage" "$DISTRO/usr" "$NBDBOOT_MODROOT" \
  mkinitramfs -d "$work/conf" -c lz4 -o "$work/initrd.img" "$NBDBOOT_KVER" > "$work/mk.log" 2>&1 ||
  { cat "$work/mk.log"; fail "mkinitramfs with the nbdboot hook failed"; }
export PATH=$DISTRO/usr/bin:$PATH
lsinitramfs "$work/initrd.img" > "$work/list"
for f in usr/sbin/nbd-client scripts/local-top/nbdboot scripts/nbdboot-lib.sh etc/modprobe.d/nbdboot.conf \
  "usr/lib/modules/$NBDBOOT_KVER/kernel/drivers/block/nbd.ko"; do
  grep -qx "$f" "$work/list" || grep -qx "${f#usr/}" "$work/list" || fail "$f missing from the image"
done
! grep -qx scripts/local-top/nbd "$work/list" || fail "Debian's local-top/nbd is still in the image"
unmkinitramfs "$work/initrd.img" "$work/x"
client=$work/x/usr/sbin/nbd-client; [ -e "$client" ] || client=$work/x/sbin/nbd-client
cmp "$client" .build/static/nbd-client || fail "/sbin/nbd-client is not nbdboot's static client"
grep -q '/scripts/local-top/nbdboot' "$work/x/scripts/local-top/ORDER" || fail "local-top/nbdboot not in ORDER"
grep -qx 'options nbd max_part=15' "$work/x/etc/modprobe.d/nbdboot.conf" || fail "no max_part option"
echo "mkinitramfs with the hook: $(stat -c %s "$work/initrd.img") bytes (lz4), $(wc -l < "$work/list") entries, nbdboot's client and script in place"

# 5. A real dracut (059) with the 95nbdboot module and its 50-nbdboot.conf, installed as `make install`
# lays them out, next to dracut-network's modules (95nbd among them; the conf keeps it out). dracut's
# network-legacy and udev modules want dhclient, arping, udevadm and systemd-udevd, which this machine
# does not have: stand-in scripts, which only end up as files in the image (it is built, not booted).
NET=$HOME/.cache/nbdboot/distro-network
if [ ! -d "$NET/usr/lib/dracut/modules.d/40network" ]; then
  ndebs=$HOME/.cache/nbdboot/distro-network-debs; mkdir -p "$ndebs"
  (cd "$ndebs" && apt-get download dracut-network) || fail "apt-get download dracut-network failed (offline?)"
  rm -rf "$NET.tmp"; mkdir -p "$NET.tmp"; dpkg-deb -x "$ndebs"/dracut-network_*.deb "$NET.tmp"; rm -rf "$NET"; mv "$NET.tmp" "$NET"
fi
dstage=$work/dstage
mkdir -p "$dstage/bin" "$dstage/lib/systemd" "$work/dconf"
for b in dhclient arping udevadm; do printf '#!/bin/sh\necho stand-in\n' > "$dstage/bin/$b"; chmod 755 "$dstage/bin/$b"; done
cp "$dstage/bin/udevadm" "$dstage/lib/systemd/systemd-udevd"
install -D -m 755 .build/static/nbd-client "$dstage/lib/nbdboot/nbd-client"
install -D -m 644 $H/nbdboot-lib.sh "$dstage/share/nbdboot/nbdboot-lib.sh"
install -d "$dstage/lib/dracut/modules.d/95nbdboot"
install -m 755 $H/dracut/95nbdboot/*.sh "$dstage/lib/dracut/modules.d/95nbdboot/"
cp $H/dracut/50-nbdboot.conf "$work/dconf/"
unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=$1:$2:$3:$4:/usr" /usr &&
  mount --bind "$4/boot" /boot && shift 4 && exec "$@"' sh "$dstage" "$NET/usr" "$DISTRO/usr" "$NBDBOOT_MODROOT" \
  dracut --conf /dev/null --confdir "$work/dconf" --no-hostonly -m "base network-legacy nbdboot" --lz4 --force \
  --kver "$NBDBOOT_KVER" "$work/dracut.img" > "$work/dracut.log" 2>&1 || { tail -20 "$work/dracut.log"; fail "dracut with 95nbdboot failed"; }
grep -q "Including module: nbdboot" "$work/dracut.log" || fail "dracut did not include nbdboot"
! grep -q "Including module: nbd \*" "$work/dracut.log" || fail "dracut's own nbd module was included despite 50-nbdboot.conf"
rm -rf "$work/d"; unmkinitramfs "$work/dracut.img" "$work/d"
dm=$work/d/main; [ -d "$dm" ] || dm=$work/d
cmp "$dm/usr/sbin/nbd-client" .build/static/nbd-client || fail "dracut image: /usr/sbin/nbd-client is not nbdboot's static client"
cmp "$dm/usr/sbin/nbdroot" $H/dracut/95nbdboot/nbdboot-root.sh || fail "dracut image: /sbin/nbdroot is not 95nbdboot's handler"
cmp "$dm/usr/lib/nbdboot-lib.sh" $H/nbdboot-lib.sh || fail "dracut image: no /lib/nbdboot-lib.sh"
[ -x "$dm/usr/lib/dracut/hooks/cmdline/90-parse-nbdboot.sh" ] || fail "dracut image: no cmdline hook 90-parse-nbdboot.sh"
grep -qx 'options nbd max_part=15' "$dm/etc/modprobe.d/nbdboot.conf" || fail "dracut image: no max_part option"
find "$dm/usr/lib/modules" -name nbd.ko | grep -q . || fail "dracut image: no nbd.ko"
echo "dracut with 95nbdboot: $(stat -c %s "$work/dracut.img") bytes (lz4), static client, handler, cmdline hook, nbd.ko; dracut's nbd left out"
echo PASS
