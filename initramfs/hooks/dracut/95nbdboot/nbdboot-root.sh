#!/bin/sh
# /sbin/nbdroot: dracut's netroot handler for nbd: (network's netroot.sh runs
# "/sbin/nbdroot NETIF NETROOT NEWROOT" once the interface is up). Connects /dev/nbd0
# with nbdboot's static client, which stays resident (-persist: reconnects when the
# server restarts; -systemd-mark: spared by systemd's shutdown), and makes /dev/root
# point at it for rootfs-block, as dracut's own nbdroot.sh does.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/nbdboot-lib.sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

[ -n "$1" ] && [ -n "$2" ] && [ -n "$3" ] || { warn "nbdboot: usage: nbdroot NETIF NETROOT NEWROOT"; exit 1; }
netif=$1
nroot=$2
NEWROOT=$3
[ "${nroot%%:*}" = "nbd" ] || exit 0

nbdboot_parse_dracut "$nroot" netroot || die "nbdboot: $nbdboot_error"
nbdboot_device=/dev/nbd0

# The command line's ro/rw and rootflags= win over the flags field, as in dracut.
fsopts=$nbdboot_flags
rflags=$(getarg rootflags=)
[ -n "$rflags" ] && fsopts=${fsopts:+$fsopts,}$rflags
getarg ro > /dev/null && fsopts=${fsopts:+$fsopts,}ro
getarg rw > /dev/null && fsopts=${fsopts:+$fsopts,}rw
fstype=$nbdboot_fstype
rfstype=$(getarg rootfstype=)
[ -n "$rfstype" ] && [ "$fstype" = auto ] && fstype=$rfstype

if ! nbd-client -check "$nbdboot_device" > /dev/null 2>&1; then
    modprobe --all -b -q nbd
    i=0
    while [ ! -b "$nbdboot_device" ]; do
        [ $i -ge 20 ] && die "nbdboot: $nbdboot_device did not appear"
        udevadm settle --exit-if-exists="$nbdboot_device"
        i=$((i + 1))
    done
fi

if [ "$root" = "block:/dev/root" ] || [ "$root" = "dhcp" ]; then
    printf 'KERNEL=="nbd0", ENV{DEVTYPE}!="partition", ENV{ID_FS_TYPE}=="?*", SYMLINK+="root"\n' > /etc/udev/rules.d/99-nbdboot-root.rules
    udevadm control --reload
    wait_for_dev -n /dev/root
    if [ -z "$DRACUT_SYSTEMD" ]; then
        type write_fs_tab > /dev/null 2>&1 || . /lib/fs-lib.sh
        write_fs_tab /dev/root "$fstype" "$fsopts"
        printf '/bin/mount %s\n' "$NEWROOT" > "$hookdir/mount/01-$$-nbdboot.sh"
    else
        mkdir -p /run/systemd/system/sysroot.mount.d
        {
            echo "[Mount]"
            echo "Where=/sysroot"
            echo "What=/dev/root"
            [ "$fstype" != auto ] && echo "Type=$fstype"
            [ -n "$fsopts" ] && echo "Options=$fsopts"
        } > /run/systemd/system/sysroot.mount.d/nbdboot.conf
        systemctl --no-block daemon-reload
    fi
fi

if ! nbd-client -check "$nbdboot_device" > /dev/null 2>&1; then
    # shellcheck disable=SC2046,SC2086 # split on purpose: names hold no spaces, options are words
    nbd-client $(nbdboot_client_args) $nbdboot_client_opts || die "nbdboot: cannot connect $nbdboot_device to $nbdboot_host:$nbdboot_port (export \"$nbdboot_name\") on $netif"
fi
need_shutdown
exit 0
