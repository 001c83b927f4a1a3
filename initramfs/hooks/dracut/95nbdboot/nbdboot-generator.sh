#!/bin/sh
# systemd generator (dracut with systemd): root=nbd:... gives a sysroot.mount of
# /dev/root (which /sbin/nbdroot links to /dev/nbd0) with the value's FSTYPE and FLAGS,
# as dracut's nbd-generator.sh does for 95nbd.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/nbdboot-lib.sh

[ -z "$root" ] && root=$(getarg root=)
[ "${root%%:*}" = "nbd" ] || exit 0
GENERATOR_DIR=$2
[ -n "$GENERATOR_DIR" ] || exit 1
[ -d "$GENERATOR_DIR" ] || mkdir -p "$GENERATOR_DIR"
nbdboot_parse_dracut "$root" root || { warn "nbdboot: $nbdboot_error"; exit 0; }
flags=$nbdboot_flags
rflags=$(getarg rootflags=)
[ -n "$rflags" ] && flags=${flags:+$flags,}$rflags
fstype=$nbdboot_fstype
[ "$fstype" = auto ] && fstype=$(getarg rootfstype=)
{
    echo "[Unit]"
    echo "Before=initrd-root-fs.target"
    echo "[Mount]"
    echo "Where=/sysroot"
    echo "What=/dev/root"
    [ -n "$fstype" ] && [ "$fstype" != auto ] && echo "Type=$fstype"
    [ -n "$flags" ] && echo "Options=$flags"
} > "$GENERATOR_DIR/sysroot.mount"
exit 0
