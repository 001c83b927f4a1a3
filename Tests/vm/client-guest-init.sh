#!/bin/sh
# PID 1 of the throw-away initramfs built by test-client-connect.sh: loads the
# modules, brings eth0 up by DHCP, then drives /sbin/nbd-client (our static
# client) through netlink, ioctl, read-only and -persist connections to the
# host's server at 10.0.2.2:$nbdport (kernel command line), printing
# "CLIENTTEST <marker>" lines on the console for the host to grep.
export PATH=/bin:/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mark() { echo "CLIENTTEST $*"; }
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover \
         virtio_net nbd crc16 mbcache jbd2 crc32c_generic ext4; do
  args=""; [ $m = nbd ] && args="max_part=8"
  insmod /lib/modules/$m.ko $args || mark "insmod-failed $m"
done
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /udhcpc.sh -n -q -t 5 || mark dhcp-failed
host=10.0.2.2 port=${nbdport:-10809} name=station want="hello from nbdboot"
mark "guest-ready $(ip -4 addr show eth0 | grep -o 'inet [0-9.]*')"

# Never connected: -c says 1.
nbd-client -c /dev/nbd0; [ $? = 1 ] && mark idle-check-1
# A wrong export name: exit 1 with a message.
nbd-client $host $port /dev/nbd0 -N nosuch 2>/tmp/err; rc=$?; cat /tmp/err
[ $rc = 1 ] && grep -q nosuch /tmp/err && mark badname-exit-1

# 1. Netlink (the default).
out=$(nbd-client $host $port /dev/nbd0 -N $name 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && [ "$out" = "Connected /dev/nbd0" ] && mark netlink-connect-ok
pid=$(nbd-client -c /dev/nbd0); [ $? = 0 ] && [ -n "$pid" ] && mark "netlink-check-connected pid=$pid"
[ "$(cat /sys/block/nbd0/backend)" = "$host:$port/$name" ] && mark netlink-backend-ok
mount -t ext4 -o ro /dev/nbd0 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark netlink-content-ok
umount /mnt
nbd-client -d /dev/nbd0 && mark netlink-disconnect-ok
nbd-client -c /dev/nbd0; [ $? = 1 ] && mark netlink-check-disconnected

# 2. ioctl (-nonetlink): a child stays in NBD_DO_IT; plain -d still ends it.
out=$(nbd-client $host $port /dev/nbd1 -N $name -nonetlink -b 1024 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && [ "$out" = "Connected /dev/nbd1" ] && mark ioctl-connect-ok
pid=$(nbd-client -c /dev/nbd1); [ $? = 0 ] && kill -0 "$pid" && mark "ioctl-check-connected pid=$pid"
[ "$(cat /sys/block/nbd1/queue/logical_block_size)" = 1024 ] && mark ioctl-blocksize-ok
mount -t ext4 -o ro /dev/nbd1 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark ioctl-content-ok
umount /mnt
nbd-client -d /dev/nbd1 && mark ioctl-disconnect-ok
nbd-client -c /dev/nbd1; [ $? = 1 ] && mark ioctl-check-disconnected
sleep 0.5; kill -0 "$pid" 2>/dev/null || mark ioctl-child-exited

# 2b. -nofork -swap: the caller itself sits in NBD_DO_IT, locked in memory,
#     away from the OOM killer; -d makes it return 0.
nbd-client $host $port /dev/nbd3 -N $name -nonetlink -nofork -swap >/dev/null 2>&1 &
fg_pid=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/block/nbd3/pid ] && break; sleep 0.3; done
[ "$(cat /sys/block/nbd3/pid)" = "$fg_pid" ] && mark nofork-serves-itself
grep -q "VmLck:.*[1-9]" /proc/$fg_pid/status && [ "$(cat /proc/$fg_pid/oom_score_adj)" = -1000 ] && mark swap-locked
nbd-client -d /dev/nbd3 >/dev/null
wait $fg_pid && mark nofork-exit-0

# 3. Read-only with the --name= form, EXPORT_NAME instead of GO (-g), and two
#    connections (-C 2: nbdkit's file plugin allows multi-conn): two queues.
nbd-client $host $port /dev/nbd2 --name=$name --readonly -no-optgo -C 2 >/dev/null && [ "$(cat /sys/block/nbd2/ro)" = 1 ] && mark readonly-ok
# Established TCP connections to the server (rem_address :PORT in hex, state 01).
conns=$(grep -c ":$(printf '%04X' $port) 01 " /proc/net/tcp)
[ "$conns" = 2 ] && mark multiconn-ok || echo "connections to the server: $conns"
mount -t ext4 -o ro /dev/nbd2 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark exportname-route-content-ok
umount /mnt
nbd-client -d /dev/nbd2

# 4. -persist -systemd-mark: a resident monitor, marked '@', that survives a
#    server restart (the host restarts it when it sees restart-server). Called
#    by its full path as the static init will: argv[0] becomes "@sbin/nbd-client".
/sbin/nbd-client $host $port /dev/nbd0 -N $name -systemd-mark -persist >/tmp/out 2>&1; rc=$?; cat /tmp/out
[ $rc = 0 ] && grep -q "Connected /dev/nbd0" /tmp/out && mark persist-connect-ok
sleep 0.5
ps | grep '[@]sbin/nbd-client' && mark persist-resident-marked
mount -t ext4 -o ro /dev/nbd0 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark persist-content-ok
# After switch_root the monitor's /sys is gone: it must keep watching anyway
# (it asks NBD_CMD_STATUS). Hide /sys for a few of its 2 s polls.
mkdir -p /sys2 && mount --move /sys /sys2 && sleep 5
ps | grep -q '[@]sbin/nbd-client' && mark persist-survives-without-sys
mount --move /sys2 /sys
mark restart-server
sleep 2
echo 3 >/proc/sys/vm/drop_caches
[ "$(cat /mnt/hello.txt)" = "$want" ] && mark persist-read-after-restart-ok
logged() { for i in 1 2 3 4 5 6 7 8 9 10; do dmesg | grep -q "$1" && return 0; sleep 0.3; done; return 1; }
logged "nbd-client: /dev/nbd0 reconnected" && mark persist-reconnected
umount /mnt
nbd-client -d /dev/nbd0 && mark persist-disconnect-ok
for i in 1 2 3 4 5 6 7 8 9 10; do ps | grep -q '[@]sbin/nbd-client' || break; sleep 0.5; done
ps | grep -q '[@]sbin/nbd-client' || mark persist-monitor-exited

# 4b. A partitioned export: the partition node appears right after connect
#     (the client opens the device once so the kernel reads the table).
nbd-client $host $port /dev/nbd2 -N parted >/dev/null && mark parted-connect-ok
[ -b /dev/nbd2p1 ] && mount -t ext4 -o ro /dev/nbd2p1 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark parted-partition-ok
umount /mnt
nbd-client -d /dev/nbd2

# 5. A server that stops answering without closing (the host SIGSTOPs it for
#    6 s when it sees freeze-server): the request timeout (-t 3) declares the
#    link dead, and the monitor reconnects once the server answers again.
#    With -no-optgo, so the reconnect replays NBD_OPT_EXPORT_NAME (the
#    crash case above replays NBD_OPT_GO).
/sbin/nbd-client $host $port /dev/nbd1 -N $name -persist -t 3 -no-optgo >/dev/null 2>&1 && mark freeze-connect-ok
mount -t ext4 -o ro /dev/nbd1 /mnt
mark freeze-server
sleep 1
echo 3 >/proc/sys/vm/drop_caches
[ "$(cat /mnt/hello.txt)" = "$want" ] && mark freeze-read-ok
logged "nbd-client: /dev/nbd1 reconnected" && mark freeze-reconnected
umount /mnt
nbd-client -d /dev/nbd1

# 6. Scenario (d): the same habits as Debian's nbd-client 3.24 (/debian/nbd-client),
#    each client checking and disconnecting what the other connected.
deb=/debian/nbd-client
port2=${nbdport2:-10810}
both() { # both ARGS...: run both clients; same exit status and stdout (Debian's
  #        "Negotiation:" progress line dropped) -> 0
  o1=$(nbd-client "$@" 2>/tmp/e1); r1=$?
  o2=$($deb "$@" 2>/tmp/e2 | grep -v '^Negotiation:'); r2=$?
  [ "$r1" = "$r2" ] && [ "$o1" = "$o2" ] && return 0
  echo "differ on '$*': ours $r1 [$o1] $(cat /tmp/e1); debian $r2 [$o2] $(cat /tmp/e2)"; return 1
}
set -o pipefail
both -c /dev/nbd4 && mark same-idle-check
nbd-client $host $port /dev/nbd4 -N $name >/dev/null && both -c /dev/nbd4 && mark same-check-ours
$deb -d /dev/nbd4 >/dev/null 2>&1; sleep 0.5; nbd-client -c /dev/nbd4; [ $? = 1 ] && mark debian-disconnects-ours
$deb $host $port /dev/nbd4 -N $name >/dev/null 2>&1 && both -c /dev/nbd4 && mark same-check-debians
nbd-client -d /dev/nbd4 >/dev/null; sleep 0.5; $deb -c /dev/nbd4 >/dev/null 2>&1; [ $? = 1 ] && mark ours-disconnects-debians
both -l $host $port && mark same-list
set +o pipefail
# nbdtab: the entry for nbd5, used by either client as "nbd-client nbd5".
# (3.24's grammar takes comments only on lines of their own, and no blanks
# before the device or after the options; ours also takes trailing comments.)
cat >/etc/nbdtab <<TAB
# device  host     export   options
nbd5      $host    $name    port=$port,bs=1024

nbd8 $host nosuch
TAB
# 3.24 reads this entry but drops its port= (get_from_config never copies
# it back), so it dials 10809 and is refused: documented, not copied.
$deb nbd5 >/tmp/o 2>&1; rc=$?; cat /tmp/o
[ $rc = 1 ] && grep -q "Connection refused" /tmp/o && [ ! -e /sys/block/nbd5/pid ] && mark nbdtab-debian-drops-port
out=$(nbd-client nbd5 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && [ "$out" = "Connected /dev/nbd5" ] && [ "$(cat /sys/block/nbd5/queue/logical_block_size)" = 1024 ] && mark nbdtab-ours-connect
mount -t ext4 -o ro /dev/nbd5 /mnt && [ "$(cat /mnt/hello.txt)" = "$want" ] && mark nbdtab-ours-content
umount /mnt
both -c /dev/nbd5 && mark nbdtab-same-check
nbd-client -d nbd5 && nbd-client -c /dev/nbd5; [ $? = 1 ] && mark nbdtab-disconnect
nbd-client nbd9 2>/tmp/e; rc=$?; cat /tmp/e
[ $rc = 1 ] && grep -q "no entry for nbd9" /tmp/e && mark nbdtab-missing-entry-exit-1
# A URI instead of HOST PORT -N NAME.
nbd-client nbd://$host:$port/$name /dev/nbd5 >/dev/null && [ "$(cat /sys/block/nbd5/backend)" = "$host:$port/$name" ] && mark uri-connect-ok
nbd-client -d /dev/nbd5
# Export 2 (no multi-conn, 64 KiB maximum payload).
nbd-client $host $port2 /dev/nbd6 -N "" -C 2 2>/tmp/e; rc=$?; cat /tmp/e
[ $rc = 1 ] && grep -q CAN_MULTI_CONN /tmp/e && [ ! -e /sys/block/nbd6/pid ] && mark multiconn-refused
nbd-client $host $port2 /dev/nbd6 -N "" >/dev/null 2>&1
kb=$(cat /sys/block/nbd6/queue/max_sectors_kb); echo "nbd6 max_sectors_kb=$kb"
[ "$kb" = 64 ] && mark maxpayload-capped
nbd-client -d /dev/nbd6
# -persist without -swap on a device that becomes swap: the monitor locks itself.
nbd-client $host $port2 /dev/nbd7 -N "" -persist >/dev/null 2>&1
mkswap /dev/nbd7 >/dev/null && swapon /dev/nbd7
logged "nbd-client: /dev/nbd7 holds swap: monitor locked in memory" && {
  for p in /proc/[0-9]*; do tr '\0' ' ' <$p/cmdline 2>/dev/null | grep -q 'nbd7 -N' && mon=${p#/proc/}; done
  grep VmLck /proc/$mon/status
  grep -q "VmLck:.*[1-9]" /proc/$mon/status && [ "$(cat /proc/$mon/oom_score_adj)" = -1000 ] && mark swap-autolock
}
swapoff /dev/nbd7
nbd-client -d /dev/nbd7

mark done
poweroff -f
