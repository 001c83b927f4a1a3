#!/usr/bin/env bash
# The rescue shell. With busybox in the image (--add-file
# /bin/busybox:/bin/busybox), rd.break opens `/bin/busybox sh` on the
# console after the root is mounted; the host types into the serial port
# (a QEMU pipe chardev), checks the shell's answer, and `exit` lets the boot
# go on to the root's /sbin/init. rd.shell opens it after a fatal error and
# reboots when it exits. Without busybox, rd.break says so and reboots after
# nbdboot.fail-delay.
. "$(dirname "$0")/init-lib.sh"
b6_setup boot6-rescue
cat >"$VM_WORK/init.sh" <<'EOS'
#!/bin/busybox sh
echo "ROOT-OK $(/bin/busybox awk '$2=="/"{print $1}' /proc/mounts)"
/bin/busybox poweroff -f
EOS
b6_root_dir "$VM_WORK/root" "$VM_WORK/init.sh"
b6_ext4 "$VM_WORK/root.img" "$VM_WORK/root" 32M
start_nbdboot_server root="$VM_WORK/root.img"
port=$VM_SERVER_PORT
build_initramfs "$VM_WORK/initrd-busybox" --add-file /bin/busybox:/bin/busybox
b6_initramfs

# converse NAME APPEND WAIT-FOR LINE...: boots the busybox image with its
# serial port on a QEMU pipe chardev, waits for WAIT-FOR on the console,
# then types each LINE (one a second: busybox's line editor asks the
# terminal for the cursor position first and would take typed-ahead text
# as the answer). The console is in $VM_WORK/NAME.log.
converse() {
  local name=$1 append=$2 wait_for=$3 line i start=$SECONDS; shift 3
  local log=$VM_WORK/$name.log ser=$VM_WORK/$name-serial
  mkfifo "$ser.in" "$ser.out"
  cat "$ser.out" >"$log" &
  local cat_pid=$!
  vm_on_exit "kill $cat_pid 2>/dev/null"
  timeout -k 5 60 qemu-system-x86_64 -M q35 -m 512M -smp 1 -accel tcg -display none -vga none -monitor none \
    -no-reboot -chardev "pipe,id=s0,path=$ser" -serial chardev:s0 -kernel "$NBDBOOT_VMLINUZ" \
    -initrd "$VM_WORK/initrd-busybox" -netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
    -append "console=ttyS0 panic=-1 loglevel=4 $append" </dev/null &
  local qemu_pid=$!
  vm_on_exit "kill $qemu_pid 2>/dev/null"
  exec 3>"$ser.in"
  for ((i = 0; i < 500; i++)); do
    grep -qaF "$wait_for" "$log" && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
  done
  for line in '' "$@"; do
    sleep 1
    printf '%s\n' "$line" >&3
  done
  wait "$qemu_pid" || true
  exec 3>&-
  sleep 0.5
  kill "$cat_pid" 2>/dev/null || true
  vm_log "-- boot $name: $((SECONDS - start)) s"
}

# Boot 1: busybox, rd.break: the shell sees the mounted root; exit goes on.
converse shell "nbdroot=10.0.2.2:$port/root rd.break nbdboot.fail-delay=1" "rd.break: rescue shell" \
  'echo RESCUE-$((6*7)) $(/bin/busybox wc -l < /newroot/sbin/init)' 'exit'
b6_expect "$VM_WORK/shell.log" \
  "nbdboot-init: rd.break: rescue shell (/bin/busybox sh); exit it to switch to the root" \
  "RESCUE-42 3" \
  "nbdboot-init: rescue shell ended (exit status 0); going on to switch to the root" \
  "ROOT-OK /dev/nbd0"

# Boot 2: busybox, rd.shell and a fatal error (no such export): the shell,
# then a reboot.
converse fatal "nbdroot=10.0.2.2:$port/nosuch rd.shell nbdboot.fail-delay=1" "rd.shell: rescue shell" \
  'echo SHELL-AFTER-FATAL $(/bin/busybox cat /sys/block/nbd0/size)' 'exit'
b6_expect "$VM_WORK/fatal.log" \
  "nbdboot-init: FATAL: nbd-client for 10.0.2.2:$port/nosuch on /dev/nbd0 failed" \
  "nbdboot-init: rd.shell: rescue shell (/bin/busybox sh); exit it to reboot" \
  "SHELL-AFTER-FATAL 0" "reboot: Restarting system"

# Boot 3: no busybox in the image.
b6_boot nobusybox "nbdroot=10.0.2.2:$port/root rd.break"
b6_expect "$VM_WORK/nobusybox.log" \
  "nbdboot-init: rd.break: stopping before switch root as asked; the image has no shell (add busybox as /bin/busybox)" \
  "nbdboot-init: rebooting in 1 s"
if grep -qa ROOT-OK "$VM_WORK/nobusybox.log"; then vm_log "FAIL: rd.break without a shell went on to the root"; B6_FAIL=1; fi
[ "$B6_FAIL" = 0 ] && echo "PASS: rd.break and rd.shell rescue shells with busybox, message and reboot without"
exit "$B6_FAIL"
