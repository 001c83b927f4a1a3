#!/bin/sh
# dracut cmdline hook (90): is the root on NBD? Sourced by dracut with its library loaded.
#   root=nbd:HOST:PORT|NAME[:FSTYPE[:FLAGS[:OPTS]]]   netroot=nbd:...   (root= wins)
#   root=nbd://HOST[:PORT]/NAME
# Checks the value now (a malformed one stops the boot, naming it), loads nbd, and
# sets rootok=1 and root=block:/dev/root, which the handler (/sbin/nbdroot) fulfils.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/nbdboot-lib.sh

[ -z "$root" ] && root=$(getarg root=)
if [ -z "$netroot" ]; then
    for netroot in $(getargs netroot=); do
        [ "${netroot%%:*}" = "nbd" ] && break
    done
    [ "${netroot%%:*}" = "nbd" ] || unset netroot
fi
if [ "${root%%:*}" = "nbd" ]; then
    [ -n "$netroot" ] && warn "nbdboot: root= takes precedence over netroot=; ignoring netroot=$netroot"
    netroot=$root
    unset root
fi
# Not NBD: another module's business.
[ "${netroot%%:*}" = "nbd" ] || return 0

nbdboot_parse_dracut "$netroot" netroot || die "nbdboot: $nbdboot_error"
incol2 /proc/devices nbd || modprobe nbd max_part=15 || die "nbdboot: the NBD root needs the nbd module, which does not load"

rootok=1
if [ -z "$root" ]; then
    root=block:/dev/root
    wait_for_dev -n /dev/root
fi
