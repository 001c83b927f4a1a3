#!/usr/bin/env bash
# A static IPv6 address from ip= (dracut's bracketed form) boots a station
# whose server is reachable over IPv6 only: `nbdboot serve` listens on
# [::1], which QEMU's user network shows the guest as fec0::2 (its IPv4
# side, 10.0.2.2, has no server behind it). The init adds fec0::15/64 and
# the default route by rtnetlink, waits for DAD, and nbd-client dials
# AF_INET6.
#   1. ip=[fec0::15]::[fec0::2]:64::eth0:none nbdroot=[fec0::2]:PORT/root
#      (Debian's form): the address, the route, /run/net6-eth0.conf, no
#      SLAAC address beside the static one (autoconf=0)
#   2. ip=[fec0::15/64]::[fec0::2]:::eth0:static root=nbd://[fec0::2]:PORT/root
#      (the prefix inside the brackets, an NBD URI)
. "$(dirname "$0")/init-lib.sh"
: "${VM_PORT_RANGE:=22100-22199}"
export VM_PORT_RANGE
b6_setup boot6-ipv6-static
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
bb=/bin/busybox
echo "ROOT-OK $($bb awk '$2=="/"{print $1}' /proc/mounts)"
echo "ADDR6 $($bb ip -6 addr show dev eth0 | $bb awk '/inet6/{print $2, $4}' | $bb tr '\n' ' ')"
echo "ROUTE6 $($bb ip -6 route show default | $bb tr '\n' ' ')"
echo "AUTOCONF $($bb cat /proc/sys/net/ipv6/conf/eth0/autoconf)"
echo "NET6CONF $($bb cat /run/net6-eth0.conf 2>&1 | $bb tr '\n' ' ')"
echo "NET4CONF $($bb ls /run/net-eth0.conf 2>&1)"
$bb poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
VM_LISTEN="[::1]" start_nbdboot_server root="$VM_WORK/root.img"
grep -q "listening on \[::1\]:$VM_SERVER_PORT" "$VM_SERVER_LOG" ||
  vm_die "the server does not say it listens on [::1]:$VM_SERVER_PORT (log: $VM_SERVER_LOG)"
b6_initramfs
port=$VM_SERVER_PORT

# line_has WORD TEXT: the console line starting with WORD contains TEXT.
line_has() {
  grep -a "^$1 " "$log" | grep -qF -- "$2" && { vm_log "ok: $1 has '$2'"; return 0; }
  vm_log "FAIL: the $1 line lacks '$2': $(grep -a "^$1 " "$log" || echo '(no such line)')"; B6_FAIL=1
}

b6_boot static6 "ip=[fec0::15]::[fec0::2]:64::eth0:none nbdroot=[fec0::2]:$port/root"
log=$VM_WORK/static6.log
b6_expect "$log" \
  "nbdboot-init: network (static IPv6): eth0 fec0::15/64 gw fec0::2" \
  "nbdboot-init: connecting /dev/nbd0 to [fec0::2]:$port/root: /sbin/nbd-client fec0::2 $port /dev/nbd0 -N root" \
  "ROOT-OK /dev/nbd0" \
  "AUTOCONF 0" \
  "NET6CONF DEVICE6='eth0' IPV6PROTO='none' IPV6ADDR='fec0::15' IPV6NETMASK='64' IPV6GATEWAY='fec0::2'" \
  "NET4CONF ls: /run/net-eth0.conf: No such file"
line_has ADDR6 "fec0::15/64 site"
# metric 1000, below the 1024 of the route QEMU's router advertisement adds
# (which may come before or after the init's RTM_NEWROUTE)
line_has ROUTE6 "default via fec0::2 dev eth0  metric 1000"
# autoconf=0: the router advertisements QEMU sends add no SLAAC address.
if grep -a '^ADDR6' "$log" | grep -q 'fec0::5054'; then
  vm_log "FAIL: a SLAAC address came up beside the static one: $(grep -a '^ADDR6' "$log")"; B6_FAIL=1
fi

b6_boot static6-uri "ip=[fec0::15/64]::[fec0::2]:::eth0:static root=nbd://[fec0::2]:$port/root"
b6_expect "$VM_WORK/static6-uri.log" \
  "nbdboot-init: network (static IPv6): eth0 fec0::15/64 gw fec0::2" \
  "nbdboot-init: connecting /dev/nbd0 to [fec0::2]:$port/root" \
  "ROOT-OK /dev/nbd0"
[ "$B6_FAIL" = 0 ] && echo "PASS: static IPv6 (ip=[...] forms, nbdroot=[v6], nbd://[v6])"
exit "$B6_FAIL"
