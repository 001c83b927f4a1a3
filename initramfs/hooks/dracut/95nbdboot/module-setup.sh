#!/bin/bash
# dracut module 95nbdboot (installed in /usr/lib/dracut/modules.d/95nbdboot): puts
# nbdboot's static nbd-client and NBD root handling into a dracut image, for sites that
# keep dracut. It takes the place of dracut's own 95nbd (dracut-network) and reads the
# same command line: root=nbd:HOST:PORT|NAME[:FSTYPE[:FLAGS[:OPTS]]], netroot=nbd:...,
# root=dhcp/netroot=dhcp with a DHCP root-path "nbd:...", and nbd://HOST[:PORT]/NAME.
# Differences from 95nbd: bs= and timeout= in OPTS are honoured (95nbd drops them), and
# the client stays resident and reconnects (-persist) with systemd's '@' mark.
#
# Both modules handle root=nbd:, so only one may be in an image:
# /usr/lib/dracut/dracut.conf.d/50-nbdboot.conf (installed with this module) says
# omit_dracutmodules+=" nbd ", and install() refuses to run next to 95nbd.

# called by dracut
check() {
    local _rootdev
    [[ -x /usr/lib/nbdboot/nbd-client ]] || { dinfo "nbdboot: /usr/lib/nbdboot/nbd-client is missing"; return 1; }
    [[ -r /usr/share/nbdboot/nbdboot-lib.sh ]] || { dinfo "nbdboot: /usr/share/nbdboot/nbdboot-lib.sh is missing"; return 1; }
    # hostonly: only when the root is on an NBD device (block major 43), as 95nbd decides.
    [[ $hostonly ]] || [[ $mount_needs ]] && {
        _rootdev=$(find_root_block_device)
        [[ -b /dev/block/$_rootdev ]] || return 1
        check_block_and_slaves block_is_nbd "$_rootdev" || return 255
    }
    return 0
}

# called by dracut
depends() {
    # network brings the interface up (ip=, rd.neednet, DHCP) and calls /sbin/nbdroot
    # (netroot.sh's handler for nbd:); rootfs-block mounts /dev/root.
    echo network rootfs-block
    return 0
}

# called by dracut
installkernel() {
    hostonly='' instmods nbd
}

# called by dracut
install() {
    if dracut_module_included "nbd"; then
        derror "nbdboot: dracut's nbd module is in the image too; both handle root=nbd:. Add omit_dracutmodules+=\" nbd \" to a file in /etc/dracut.conf.d"
        return 1
    fi
    inst /usr/lib/nbdboot/nbd-client /usr/sbin/nbd-client
    inst_simple /usr/share/nbdboot/nbdboot-lib.sh /lib/nbdboot-lib.sh
    inst_hook cmdline 90 "$moddir/parse-nbdboot.sh"
    inst_script "$moddir/nbdboot-root.sh" /sbin/nbdroot
    if dracut_module_included "systemd-initrd"; then
        inst_script "$moddir/nbdboot-generator.sh" "$systemdutildir"/system-generators/dracut-nbdboot-generator
    fi
    mkdir -p "${initdir}/etc/modprobe.d"
    echo "options nbd max_part=15" > "${initdir}/etc/modprobe.d/nbdboot.conf"
    dracut_need_initqueue
}
