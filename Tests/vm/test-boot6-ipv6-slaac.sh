#!/usr/bin/env bash
# IPv6 SLAAC: with ip=auto6 the init turns accept_ra and autoconf on, brings
# the link up, and waits for the kernel to configure an address from
# QEMU's router advertisements (prefix fec0::/64) and for DAD to end; the
# server listens on [::1] only (the guest's fec0::2), so the root comes
# over IPv6 or not at all.
#   1. ip=auto6 nbdroot=[fec0::2]:PORT/root: the SLAAC address (from the
#      NIC's MAC 52:54:00:12:34:56), the router's default route,
#      /run/net6-eth0.conf with IPV6PROTO=auto6
#   2. ip=eth0:auto6 root=nbd:[fec0::2]:PORT/root (dracut's forms)
#   3. ip=auto6 on a network without router advertisements (QEMU's
#      ipv6=off): a bounded wait, then a FATAL message that says so
#   4. ip=dhcp6: refused with a message pointing to auto6
. "$(dirname "$0")/init-lib.sh"
: "${VM_PORT_RANGE:=22100-22199}"
export VM_PORT_RANGE
b6_setup boot6-ipv6-slaac
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1}' /proc/mounts)"
echo "ADDR6 $($bb ip -6 addr show dev eth0 | $bb awk '/inet6/{print $2, $4}' | $bb tr '\n' ' ')"
echo "SYSCTL accept_ra=$($bb cat /proc/sys/net/ipv6/conf/eth0/accept_ra) autoconf=$($bb cat /proc/sys/net/ipv6/conf/eth0/autoconf)"
echo "NET6CONF $($bb cat /run/net6-eth0.conf 2>&1 | $bb tr '\n' ' ')"
$bb poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
VM_LISTEN="[::1]" start_nbdboot_server root="$VM_WORK/root.img"
b6_initramfs
port=$VM_SERVER_PORT
slaac=fec0::5054:ff:fe12:3456   # EUI-64 of QEMU's first NIC, 52:54:00:12:34:56

b6_boot slaac "ip=auto6 nbdroot=[fec0::2]:$port/root"
log=$VM_WORK/slaac.log
b6_expect "$log" \
  "nbdboot-init: SLAAC: $slaac/64 on eth0 in " \
  "nbdboot-init: network (SLAAC): eth0 $slaac/64 gw fe80::2" \
  "nbdboot-init: connecting /dev/nbd0 to [fec0::2]:$port/root" \
  "ROOT-OK /dev/nbd0" \
  "SYSCTL accept_ra=1 autoconf=1" \
  "NET6CONF DEVICE6='eth0' IPV6PROTO='auto6' IPV6ADDR='$slaac' IPV6NETMASK='64' IPV6GATEWAY='fe80::2'"
grep -a '^ADDR6 ' "$log" | grep -qF "$slaac/64 site" ||
  { vm_log "FAIL: the root's ip -6 addr lacks $slaac: $(grep -a '^ADDR6' "$log")"; B6_FAIL=1; }

b6_boot slaac-dracut "ip=eth0:auto6 root=nbd:[fec0::2]:$port/root"
b6_expect "$VM_WORK/slaac-dracut.log" \
  "nbdboot-init: network (SLAAC): eth0 $slaac/64" \
  "ROOT-OK /dev/nbd0"

# No router: the wait is bounded (30 s) and the message says what to check.
b6_boot no-router "ip=auto6 nbdroot=[fec0::2]:$port/root" --netdev-options ipv6=off
b6_expect "$VM_WORK/no-router.log" \
  "nbdboot-init: FATAL: SLAAC on eth0 (ip=auto6) gave no routable IPv6 address in 30 s" \
  "is a router sending advertisements"
if grep -aq "ROOT-OK" "$VM_WORK/no-router.log"; then vm_log "FAIL: a station without IPv6 booted"; B6_FAIL=1; fi

b6_boot dhcp6 "ip=dhcp6 nbdroot=[fec0::2]:$port/root"
b6_expect "$VM_WORK/dhcp6.log" \
  "nbdboot-init: FATAL: bad kernel command line: ip=dhcp6: dhcp6 is not supported (the init has no DHCPv6 client): use auto6"
[ "$B6_FAIL" = 0 ] && echo "PASS: IPv6 SLAAC (ip=auto6, ip=eth0:auto6), no-router and dhcp6 errors"
exit "$B6_FAIL"
