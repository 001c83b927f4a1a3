#!/usr/bin/env bash
# Server names: the init resolves the host of nbdroot=/root= with its own
# stub resolver and hands nbd-client the address. A small DNS responder
# (Tests/vm/dns-responder.py, stdlib Python) listens on the host's
# 127.0.0.1:53 and [::1]:53, which QEMU's user network shows the guest as
# 10.0.2.2:53 and [fec0::2]:53; it knows only nbd-server.lab.
#   1. ip=dhcp nameserver=10.0.2.2 nbdroot=nbd-server.lab:PORT/root: an A
#      query to the responder (not to QEMU's own DNS, which DHCP offers
#      too), the root from 10.0.2.2
#   2. an unknown name stops the boot, naming the name and the servers
#   3. ip=auto6 nameserver=[fec0::2] root=nbd://nbd-server.lab:PORT/root:
#      AAAA over IPv6, the root from [fec0::2]
#   4. a name with no nameserver to ask (static ip= without dns0) stops the
#      boot with a message that says where nameservers come from
. "$(dirname "$0")/init-lib.sh"
: "${VM_PORT_RANGE:=22100-22199}"
export VM_PORT_RANGE
b6_setup boot6-dns
command -v python3 >/dev/null || vm_die "python3 is needed for the DNS responder (apt-get install python3)"
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
VM_LISTEN="127.0.0.1 [::1]" start_nbdboot_server root="$VM_WORK/root.img"
b6_initramfs
port=$VM_SERVER_PORT

# The responder: bounded lifetime, stopped by its PID on any exit.
dnslog=$VM_WORK/dns.log
: >"$dnslog"
python3 "$(dirname "$0")/dns-responder.py" --log "$dnslog" --lifetime 600 --listen 127.0.0.1 --listen ::1 \
  nbd-server.lab=10.0.2.2 nbd-server.lab=fec0::2 2>"$VM_WORK/dns.err" &
dns_pid=$!
vm_on_exit "kill $dns_pid 2>/dev/null; wait $dns_pid 2>/dev/null"
for _ in $(seq 50); do grep -q '^ready' "$dnslog" && break; kill -0 "$dns_pid" 2>/dev/null || break; sleep 0.1; done
grep -q '^ready' "$dnslog" || vm_die "the DNS responder did not start on port 53: $(cat "$VM_WORK/dns.err")"

b6_boot dns-a "ip=dhcp nameserver=10.0.2.2 nbdroot=nbd-server.lab:$port/root"
b6_expect "$VM_WORK/dns-a.log" \
  "nbdboot-init: nameservers: 10.0.2.2 10.0.2.3" \
  "nbdboot-init: DNS: nbd-server.lab is 10.0.2.2 (A from 10.0.2.2, " \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/root: /sbin/nbd-client 10.0.2.2 $port /dev/nbd0" \
  "ROOT-OK /dev/nbd0"
grep -q '^A nbd-server.lab NOERROR' "$dnslog" ||
  { vm_log "FAIL: the responder was not asked for nbd-server.lab A: $(tr '\n' ' ' <"$dnslog")"; B6_FAIL=1; }

b6_boot dns-missing "ip=dhcp nameserver=10.0.2.2 nbdroot=missing.lab:$port/root"
b6_expect "$VM_WORK/dns-missing.log" \
  "nbdboot-init: FATAL: cannot resolve the NBD server \"missing.lab\" (nbdroot=): no such name (NXDOMAIN from 10.0.2.2; asked 10.0.2.2:53, 10.0.2.3:53)"
if grep -aq "ROOT-OK\|connecting /dev/nbd0" "$VM_WORK/dns-missing.log"; then vm_log "FAIL: the station went on without the name"; B6_FAIL=1; fi

b6_boot dns-aaaa "ip=auto6 nameserver=[fec0::2] root=nbd://nbd-server.lab:$port/root"
b6_expect "$VM_WORK/dns-aaaa.log" \
  "nbdboot-init: DNS: nbd-server.lab is fec0::2 (AAAA from fec0::2, " \
  "nbdboot-init: connecting /dev/nbd0 to [fec0::2]:$port/root" \
  "ROOT-OK /dev/nbd0"
grep -q '^AAAA nbd-server.lab NOERROR' "$dnslog" ||
  { vm_log "FAIL: the responder was not asked for nbd-server.lab AAAA: $(tr '\n' ' ' <"$dnslog")"; B6_FAIL=1; }

b6_boot dns-none "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:none nbdroot=nbd-server.lab:$port/root"
b6_expect "$VM_WORK/dns-none.log" \
  "nbdboot-init: FATAL: the NBD server \"nbd-server.lab\" (nbdroot=) is a name, but no nameserver is known to resolve it; give nameserver=IP"
[ "$B6_FAIL" = 0 ] && echo "PASS: server names resolved by the init (A, AAAA, NXDOMAIN, no nameserver)"
exit "$B6_FAIL"
