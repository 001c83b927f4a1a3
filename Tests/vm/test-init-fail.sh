#!/usr/bin/env bash
# The static init's failure path: a bad command line, an unreachable
# server and a wrong filesystem type each give one `nbdboot-init: FATAL:`
# line naming the input and a hint, then the init reboots after
# nbdboot.fail-delay seconds (QEMU -no-reboot turns that into an exit, so
# the boot must end well before the 120 s timeout).
. "$(dirname "$0")/init-lib.sh"
init_setup 10
init_build_initramfs "$work/initrd.gz"
init_build_root "$work/root.img"
init_serve "$work/root.img"
fail=0
dead=$((port + 1))   # nothing listens there

check() {  # NAME APPEND PATTERN...
  local name=$1 append=$2; shift 2
  echo "== $name"
  local start=$SECONDS
  init_boot "$work/initrd.gz" "$work/$name.log" "$append nbdboot.fail-delay=1"
  expect_lines "$work/$name.log" "$@" "nbdboot-init: rebooting in 1 s" || fail=1
  if [ "$boot_rc" != 0 ]; then echo "QEMU ended with status $boot_rc (want 0: the init rebooted)"; fail=1; fi
  if grep -aq "Kernel panic\\|Attempted to kill init" "$work/$name.log"; then echo "PID 1 died"; fail=1; fi
  echo "-- $name: $((SECONDS - start)) s"
}

check missing "ip=dhcp" \
  "nbdboot-init: FATAL: bad kernel command line: nbdroot= is missing: .* (example: nbdroot=10.0.2.2:10809/root)"
check badport "nbdroot=10.0.2.2:x/root" \
  "nbdboot-init: FATAL: bad kernel command line: nbdroot=10.0.2.2:x/root: the port \"x\" is not a number from 1 to 65535"
check badip "nbdroot=10.0.2.2:$port/root ip=10.0.2.300::::::off" \
  "nbdboot-init: FATAL: bad kernel command line: ip=10.0.2.300::::::off: the client field"
check refused "nbdroot=10.0.2.2:$dead/root" \
  "nbdboot-init: FATAL: nbd-client for 10.0.2.2:$dead/root on /dev/nbd0 failed with exit status" \
  "check that the NBD server runs on 10.0.2.2 port $dead"
check fstype "nbdroot=10.0.2.2:$port/root rootfstype=xfs" \
  "nbdboot-init: FATAL: cannot mount /dev/nbd0 on /newroot (xfs, rw)"
# This image claims another kernel release: a warning, and the boot goes on.
INIT_KERNEL_RELEASE=9.9.9-test init_build_initramfs "$work/initrd.gz"
check noinit "nbdroot=10.0.2.2:$port/root init=/sbin/nosuch" \
  "nbdboot-init: warning: the image's modules are for kernel 9.9.9-test but this kernel is $NBDBOOT_KVER" \
  "nbdboot-init: FATAL: the root filesystem has no /sbin/nosuch"
exit $fail
