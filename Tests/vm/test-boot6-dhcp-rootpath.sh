#!/usr/bin/env bash
# DHCP root-path: root=dhcp / nbdroot=dhcp take the NBD server and export
# from option 17 of a DHCP offer. QEMU 7.2's user network (slirp) cannot
# send option 17 and its DHCP server cannot be turned off, so the station's
# NIC sits on a QEMU hub with slirp and a datagram netdev whose other end is
# Tests/vm/dhcp-responder.py (stdlib Python; qemu-station.sh --hub-netdev):
# a second DHCP server, 10.0.2.77, offering slirp's address plus a
# root-path that names an export made for this run only (a random name; the
# server has no other export), 200 ms after slirp's offer. Everything else
# (ARP, the station's TCP to 10.0.2.2) is still slirp's.
#   1. root=dhcp ip=dhcp, root-path 10.0.2.2:PORT/NAME (Debian's form): the
#      init waits past slirp's offer, takes 10.0.2.77's for its root-path,
#      ignores slirp's ACK to the REQUEST that named 10.0.2.77, and runs
#      the /sbin/init of that export's image.
#   2. nbdroot=dhcp (no ip=: DHCP), root-path nbd:10.0.2.2:PORT/NAME:ext4
#      (dracut's form with FSTYPE): the same.
#   3. nbdroot=10.0.2.2:PORT/NAME ip=dhcp with the responder on the hub:
#      the root is not from DHCP, so the first offer (slirp's) is taken at
#      once, without the window.
. "$(dirname "$0")/init-lib.sh"
: "${VM_PORT_RANGE:=22300-22399}"
export VM_PORT_RANGE
b6_setup boot6-dhcp-rootpath
command -v python3 >/dev/null || vm_die "python3 is needed for the DHCP responder (apt-get install python3)"

# The only export: a random name, so no boot from anything but option 17 can find it.
export_name=opt17-$RANDOM$RANDOM
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OPT17 $(/bin/busybox cat /etc/opt17-export) $(/bin/busybox awk '$2=="/"{print $1, $3}' /proc/mounts)"
echo "ROOT-CONF $(/bin/busybox cat /run/net-*.conf 2>/dev/null | /bin/busybox tr '\n' ' ')"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
echo "$export_name" >"$VM_WORK/root/etc/opt17-export"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
start_nbdboot_server "$export_name=$VM_WORK/root.img"
b6_initramfs
port=$VM_SERVER_PORT

# start_responder NAME ROOT-PATH: the responder on a free UDP port of
# VM_PORT_RANGE (bounded lifetime, stopped by its PID); sets resp_log and
# resp_netdev (the --hub-netdev for qemu-station.sh).
resp_pid=""
stop_responder() {
  [ -n "$resp_pid" ] || return 0
  kill "$resp_pid" 2>/dev/null || true
  wait "$resp_pid" 2>/dev/null || true
  resp_pid=""
}
vm_on_exit stop_responder
start_responder() {
  local name=$1 root_path=$2 ready
  stop_responder
  resp_log=$VM_WORK/$name.dhcp.log
  : >"$resp_log"
  python3 "$(dirname "$0")/dhcp-responder.py" --log "$resp_log" --port-range "$VM_PORT_RANGE" \
    --lifetime 300 --delay-ms 200 --server-id 10.0.2.77 --root-path "$root_path" 2>"$VM_WORK/$name.dhcp.err" &
  resp_pid=$!
  for _ in $(seq 50); do grep -q '^ready' "$resp_log" && break; kill -0 "$resp_pid" 2>/dev/null || break; sleep 0.1; done
  ready=$(grep -m1 '^ready' "$resp_log") || vm_die "the DHCP responder did not start: $(cat "$VM_WORK/$name.dhcp.err")"
  set -- $ready
  resp_netdev="dgram,local.type=inet,local.host=127.0.0.1,local.port=$3,remote.type=inet,remote.host=127.0.0.1,remote.port=$2"
  vm_log "-- DHCP responder (PID $resp_pid) on 127.0.0.1:$2, QEMU's end 127.0.0.1:$3, root-path $root_path"
}

# expect_responder LOG PATTERN: a line of the responder's log (grep -E).
expect_responder() {
  grep -Eq -- "$2" "$1" && return 0
  vm_log "FAIL: the responder's log ($1) has no line matching '$2':"
  sed 's/^/    | /' "$1" >&2
  B6_FAIL=1
}

# slirp_on_request LOG: what slirp answered to the REQUEST naming 10.0.2.77.
slirp_on_request() {
  local l
  l=$(tr -d '\r' <"$1" | grep -o 'DHCP: ignored an\? [A-Z]* from 10.0.2.2' | head -1) || true
  echo "${l:-nothing the init saw}"
}

rp1="10.0.2.2:$port/$export_name"
start_responder rootpath1 "$rp1"
b6_boot rootpath1 "root=dhcp ip=dhcp" --hub-netdev "$resp_netdev"
log1=$VM_WORK/rootpath1.log
b6_expect "$log1" \
  "nbdboot-init: DHCP: OFFER of 10.0.2.15 from 10.0.2.2, no root-path" \
  "nbdboot-init: DHCP: OFFER of 10.0.2.15 from 10.0.2.77, root-path $rp1" \
  "nbdboot-init: DHCP: taking the offer of 10.0.2.15 from 10.0.2.77: it carries a root-path (option 17); offers in " \
  " ms from 10.0.2.2, 10.0.2.77" \
  "nbdboot-init: DHCP: ignored an ACK from 10.0.2.2: the REQUEST named 10.0.2.77" \
  "nbdboot-init: DHCP: 10.0.2.15 from 10.0.2.77 in " \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/$export_name" \
  "ROOT-OPT17 $export_name /dev/nbd0 ext4" \
  "ROOTPATH='$rp1'"
expect_responder "$resp_log" "^DISCOVER xid=0x[0-9a-f]+ mac=52:54:00:12:34:56 -> OFFER 10.0.2.15$"
expect_responder "$resp_log" "^REQUEST xid=0x[0-9a-f]+ server=10.0.2.77 addr=10.0.2.15 -> ACK 10.0.2.15$"
vm_log "-- slirp's answer to a REQUEST naming 10.0.2.77: $(slirp_on_request "$log1")"

rp2="nbd:10.0.2.2:$port/$export_name:ext4"
start_responder rootpath2 "$rp2"
b6_boot rootpath2 "nbdroot=dhcp" --hub-netdev "$resp_netdev"
b6_expect "$VM_WORK/rootpath2.log" \
  "nbdboot-init: DHCP: taking the offer of 10.0.2.15 from 10.0.2.77: it carries a root-path (option 17)" \
  "nbdboot-init: DHCP: 10.0.2.15 from 10.0.2.77 in " \
  "nbdboot-init: connecting /dev/nbd0 to 10.0.2.2:$port/$export_name" \
  "nbdboot-init: mounted /dev/nbd0 on /newroot (ext4, rw)" \
  "ROOT-OPT17 $export_name /dev/nbd0 ext4"
expect_responder "$resp_log" "-> ACK 10.0.2.15$"

# The root named on the command line: the first offer, no window, no
# offer lines on the console (they are debug lines then).
b6_boot first-offer "nbdroot=10.0.2.2:$port/$export_name ip=dhcp" --hub-netdev "$resp_netdev"
log3=$VM_WORK/first-offer.log
b6_expect "$log3" \
  "nbdboot-init: DHCP: 10.0.2.15 from 10.0.2.2 in " \
  "ROOT-OPT17 $export_name /dev/nbd0 ext4"
if grep -aq "DHCP: taking the offer\|DHCP: OFFER of" "$log3"; then
  vm_log "FAIL: with the root on the command line the init still weighed offers:"
  grep -a "DHCP:" "$log3" | sed 's/^/    | /' >&2
  B6_FAIL=1
fi
stop_responder

for l in "$log1" "$VM_WORK/rootpath2.log" "$log3"; do
  vm_log "-- $(basename "$l" .log): $(tr -d '\r' <"$l" | grep -o 'DHCP: [0-9.]* from [0-9.]* in [0-9]* ms' | head -1 || true)"
done
[ "$B6_FAIL" = 0 ] && echo "PASS: DHCP root-path (option 17) from a second DHCP server: root=dhcp, nbdroot=dhcp; the first offer otherwise"
exit "$B6_FAIL"
