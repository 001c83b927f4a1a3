# Shared harness for nbdboot's QEMU stations: the demo (scripts/demo.sh) and
# every Tests/vm/test-*.sh source this file. Bash only; it sets no shell
# options of its own, so it works under the caller's `set -euo pipefail`.
#
# The pieces under test come from variables, so a stand-in is one line away:
#   NBDBOOT          the nbdboot executable   (default .build/release/nbdboot)
#   NBDBOOT_STATIC   dir with the static init and nbd-client (default .build/static)
#   NBDBOOT_KVER, NBDBOOT_VMLINUZ, NBDBOOT_MODROOT   the station's kernel,
#                    read from the kernel.env that scripts/kernel.sh prints
#   VM_PORT_RANGE    ports to pick from, LOW-HIGH (default 21100-21199)
#   VM_LISTEN        addresses the test server listens on, space-separated
#                    (default 127.0.0.1; "[::1]" for IPv6 stations: QEMU's
#                    user network maps the guest's fec0::2 to the host's ::1)
#
# Typical use:
#   . Tests/vm/lib.sh
#   vm_setup boot-demo                     # work dir $VM_WORK, EXIT trap
#   vm_load_kernel; vm_require_pieces
#   start_nbdboot_server root="$img"       # sets VM_SERVER_PORT, VM_SERVER_PID
#   build_initramfs "$VM_WORK/initrd"
#   boot_station "$VM_WORK/console.log" "nbdroot=10.0.2.2:$VM_SERVER_PORT/root ip=dhcp"
#   expect_console "NBDBOOT-DEMO-OK root=/dev/nbd0" "$VM_WORK/console.log"

VM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${NBDBOOT:=$VM_REPO/.build/release/nbdboot}"
: "${NBDBOOT_STATIC:=$VM_REPO/.build/static}"
: "${VM_PORT_RANGE:=21100-21199}"
VM_CLEANUP=()
VM_WORK=""
VM_SERVER_PID=""; VM_SERVER_PORT=""; VM_SERVER_LOG=""

vm_log() { printf '%s\n' "$*" >&2; }
vm_die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# vm_on_exit CMD...: run CMD when the script exits, however it exits (latest
# registered first). Each entry is one string given to eval.
vm_on_exit() { VM_CLEANUP+=("$*"); }

vm_cleanup() {
  local i
  for ((i = ${#VM_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${VM_CLEANUP[$i]}" || true
  done
  VM_CLEANUP=()
}

# vm_setup NAME: makes a fresh work dir .build/vm/NAME (kept after the run so
# its console logs can be read; emptied at the next run) and installs the
# traps that stop every process this harness started, on every exit path.
vm_setup() {
  local name=$1
  VM_WORK=${VM_WORK_DIR:-$VM_REPO/.build/vm/$name}
  rm -rf "$VM_WORK"; mkdir -p "$VM_WORK"
  trap vm_cleanup EXIT
  trap 'vm_log "interrupted"; exit 130' INT
  trap 'vm_log "terminated"; exit 143' TERM
}

# vm_load_kernel: sources the kernel.env that scripts/kernel.sh prints (it
# downloads Debian's kernel package the first time) and checks its contents.
vm_load_kernel() {
  local env_file
  env_file=$("$VM_REPO/scripts/kernel.sh") || vm_die "scripts/kernel.sh failed: run make kernel and read its message"
  # shellcheck disable=SC1090
  . "$env_file"
  [ -n "${NBDBOOT_KVER:-}" ] && [ -f "${NBDBOOT_VMLINUZ:-}" ] && [ -d "${NBDBOOT_MODROOT:-}/lib/modules/${NBDBOOT_KVER:-}" ] ||
    vm_die "$env_file does not name an existing kernel and module tree (NBDBOOT_KVER, NBDBOOT_VMLINUZ, NBDBOOT_MODROOT): delete it and run make kernel"
}

# vm_require_pieces: the nbdboot executable and the static station binaries
# must exist before anything boots; say which make target builds them.
vm_require_pieces() {
  [ -x "$NBDBOOT" ] || vm_die "no nbdboot executable at $NBDBOOT: run make build (or set NBDBOOT=PATH)"
  local f
  for f in init nbd-client; do
    [ -f "$NBDBOOT_STATIC/$f" ] ||
      vm_die "no static $f at $NBDBOOT_STATIC/$f: run make static (or set NBDBOOT_STATIC=DIR)"
  done
}

# vm_port_in_use PORT: true when something listens on 127.0.0.1:PORT.
vm_port_in_use() {
  local port=$1
  if command -v ss >/dev/null; then
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# vm_free_port [PREFERRED]: prints PREFERRED when it is free, else a free port
# of VM_PORT_RANGE, scanned from a random start so parallel runs rarely meet.
# Another process can still take the port before the server binds it:
# start_nbdboot_server retries on "address in use".
vm_free_port() {
  local preferred=${1:-} low high span start i p
  if [ -n "$preferred" ] && ! vm_port_in_use "$preferred"; then echo "$preferred"; return 0; fi
  low=${VM_PORT_RANGE%-*}; high=${VM_PORT_RANGE#*-}
  [[ $low =~ ^[0-9]+$ && $high =~ ^[0-9]+$ && $low -le $high ]] || vm_die "VM_PORT_RANGE '$VM_PORT_RANGE' is not LOW-HIGH"
  span=$((high - low + 1)); start=$((RANDOM % span))
  for ((i = 0; i < span; i++)); do
    p=$((low + (start + i) % span))
    vm_port_in_use "$p" || { echo "$p"; return 0; }
  done
  vm_die "no free port in $VM_PORT_RANGE (set VM_PORT_RANGE=LOW-HIGH)"
}

# wait_listening LOG PID [SECONDS]: waits (default 15 s) for the server
# started as PID to print `nbdboot serve: listening on HOST:PORT` to LOG.
# Fails at once when PID exits first.
wait_listening() {
  local log=$1 pid=$2 limit=${3:-15} i
  for ((i = 0; i < limit * 10; i++)); do
    grep -q 'listening on' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_nbdboot_server EXPORT...: starts `$NBDBOOT serve --listen
# 127.0.0.1:PORT --export EXPORT...` (each EXPORT is NAME=PATH or
# NAME=PATH,readonly; one --listen ADDRESS:PORT per address of $VM_LISTEN,
# default 127.0.0.1) in the background, stderr to $VM_WORK/server.log, and
# waits until it listens. PORT is $VM_PORT when set (and then must be
# free), else vm_free_port $VM_PREFERRED_PORT, retried on "address in use".
# Sets VM_SERVER_PID, VM_SERVER_PORT, VM_SERVER_LOG; the server is stopped
# on exit (stop_nbdboot_server). VM_FOLLOW_SERVER=1 also streams its log,
# each line prefixed with "server | ".
start_nbdboot_server() {
  [ $# -gt 0 ] || vm_die "start_nbdboot_server: no export given (NAME=PATH)"
  local args=() listen=() e attempt port h
  for e in "$@"; do
    [[ $e == ?*=?* ]] || vm_die "start_nbdboot_server: export '$e' is not NAME=PATH[,readonly]"
    args+=(--export "$e")
  done
  VM_SERVER_LOG=$VM_WORK/server.log
  vm_on_exit stop_nbdboot_server
  for attempt in 1 2 3; do
    if [ -n "${VM_PORT:-}" ]; then port=$VM_PORT; else port=$(vm_free_port "${VM_PREFERRED_PORT:-}"); fi
    : >"$VM_SERVER_LOG"
    listen=()
    for h in ${VM_LISTEN:-127.0.0.1}; do listen+=(--listen "$h:$port"); done
    "$NBDBOOT" serve "${listen[@]}" "${args[@]}" 2>>"$VM_SERVER_LOG" >&2 &
    VM_SERVER_PID=$!; VM_SERVER_PORT=$port
    if wait_listening "$VM_SERVER_LOG" "$VM_SERVER_PID" 15; then
      if [ "${VM_FOLLOW_SERVER:-0}" = 1 ]; then
        tail -n +1 -s 0.2 -f --pid="$VM_SERVER_PID" "$VM_SERVER_LOG" | sed -u 's/^/server | /' >&2 &
      fi
      return 0
    fi
    stop_nbdboot_server
    if grep -qi 'in use' "$VM_SERVER_LOG" && [ -z "${VM_PORT:-}" ]; then
      vm_log "port $port was taken meanwhile; trying another"; continue
    fi
    break
  done
  sed 's/^/    /' "$VM_SERVER_LOG" >&2
  vm_die "nbdboot serve did not report 'listening on' within 15 s on ${VM_LISTEN:-127.0.0.1} port $port (its log is above, $VM_SERVER_LOG)"
}

# stop_nbdboot_server: SIGTERM to the server's PID, SIGKILL after 5 s.
stop_nbdboot_server() {
  local pid=$VM_SERVER_PID i
  [ -n "$pid" ] || return 0
  VM_SERVER_PID=""
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  vm_log "nbdboot serve (PID $pid) ignored SIGTERM for 5 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# build_initramfs OUT [EXTRA ARGS...]: the station's initramfs for the
# kernel of vm_load_kernel, from nbdboot's static init and nbd-client.
build_initramfs() {
  local out=$1; shift
  "$NBDBOOT" initramfs build --kernel-version "$NBDBOOT_KVER" --module-root "$NBDBOOT_MODROOT" \
    --init "$NBDBOOT_STATIC/init" --nbd-client "$NBDBOOT_STATIC/nbd-client" \
    --output "$out" "$@" >&2 ||
    vm_die "nbdboot initramfs build failed for kernel $NBDBOOT_KVER (modules in $NBDBOOT_MODROOT, output $out)"
  [ -s "$out" ] || vm_die "nbdboot initramfs build succeeded but $out is missing or empty"
}

# boot_station LOG APPEND [qemu-station.sh ARGS...]: boots one station with
# the kernel of vm_load_kernel and $VM_INITRD (default $VM_WORK/initrd), its
# console in LOG, and returns qemu-station.sh's status (124: timeout).
# VM_STATION_TIMEOUT (default 120 s) bounds the run.
boot_station() {
  local log=$1 append=$2; shift 2
  "$VM_REPO/scripts/qemu-station.sh" --kernel "$NBDBOOT_VMLINUZ" --initrd "${VM_INITRD:-$VM_WORK/initrd}" \
    --log "$log" --append "$append" --timeout "${VM_STATION_TIMEOUT:-120}" "$@"
}

# expect_console MARKER LOG: succeeds when LOG holds a line containing MARKER
# (fixed string); otherwise prints what the station got to and fails.
expect_console() {
  local marker=$1 log=$2
  # grep reads the file itself: `tr <log | grep -q` lets grep stop early, tr
  # dies of SIGPIPE and, under pipefail, a found marker reads as missing.
  if grep -aqF -- "$marker" "$log"; then
    vm_log "ok: console shows '$marker'"
    return 0
  fi
  vm_log "FAIL: the console ($log) has no line with '$marker'. Its last 40 lines:"
  tr -d '\r' <"$log" | tail -40 | sed 's/^/    | /' >&2
  local last
  last=$(tr -d '\r' <"$log" | grep -E 'nbdboot-init:' | tail -1 || true)
  [ -n "$last" ] && vm_log "last init message: $last"
  tr -d '\r' <"$log" | grep -E 'nbdboot-init: FATAL|Kernel panic' | sed 's/^/    /' >&2 || true
  [ -n "$VM_SERVER_LOG" ] && [ -s "$VM_SERVER_LOG" ] && { vm_log "server log ($VM_SERVER_LOG):"; tail -20 "$VM_SERVER_LOG" | sed 's/^/    /' >&2; }
  return 1
}

# vm_watch_marker MARKER LOG OUT SECONDS: in the background, polls LOG every
# 0.1 s for MARKER and writes the milliseconds since the call to OUT when it
# appears; gives up after SECONDS. Prints the watcher's PID (its own output
# goes to /dev/null, or a $(...) around this call would wait for it).
vm_watch_marker() {
  local marker=$1 log=$2 out=$3 limit=$4
  (
    start=$(date +%s%N)
    for ((i = 0; i < limit * 10; i++)); do
      if grep -qF -- "$marker" "$log" 2>/dev/null; then
        echo $((($(date +%s%N) - start) / 1000000)) >"$out"; exit 0
      fi
      sleep 0.1
    done
  ) >/dev/null 2>&1 &
  echo $!
}

# vm_image_file IMAGE PATH: prints the file PATH inside the ext4 IMAGE, read
# on the host with debugfs (no mount): what the station wrote over NBD.
vm_image_file() {
  debugfs -R "cat $2" "$1" 2>/dev/null
}

# vm_compile_static OUT SRC: a static x86-64 binary for a station, with
# musl-gcc when present, else gcc -static.
vm_compile_static() {
  local out=$1 src=$2 cc
  if command -v musl-gcc >/dev/null; then cc=musl-gcc; else cc=gcc; fi
  "$cc" -static -Os -Wall -Werror -o "$out" "$src" || vm_die "$cc -static could not compile $src"
  file -b "$out" | grep -q 'statically linked' || vm_die "$out is not statically linked ($(file -b "$out"))"
}
