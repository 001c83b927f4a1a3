# The four NBD servers that scripts/bench.sh compares, started and stopped
# the same way every time. Source it (bash); it sets no shell options.
#
#   bench_start SERVER PORT IMAGE LOGDIR [MODE [OVERLAYDIR]]
#       starts SERVER (nbdboot, nbdkit, nbd-server, qemu-nbd) on
#       127.0.0.1:PORT serving IMAGE as export "bench", waits (20 s at most)
#       until `nbdinfo --size` completes a handshake with it, and sets
#       BENCH_SERVER_PID (the process to measure: for nbd-server the daemon
#       that forks one child per client). MODE "storm" serves the export for
#       boot storms instead: "root", with per-client copy-on-write (nbdboot
#       `NAME=PATH,cow,overlays=DIR` when this nbdboot has it, nbd-server
#       `copyonwrite = true`); the overlays go to OVERLAYDIR (default
#       LOGDIR/overlays), emptied first.
#   bench_stop       stops the server of bench_start (SIGTERM to its PID and
#                    to every descendant by PID, SIGKILL after 5 s)
#   bench_stop_all   stops everything this file started (the EXIT trap of
#                    the caller must call it)
#   bench_descendants PID   prints PID's descendants (from /proc/*/stat)
#   bench_has_cow    true when $NBDBOOT serve knows `,cow` exports
#
# Ports: the caller's. Only 127.0.0.1 is listened on.
# Server command lines (what the numbers mean):
#   nbdboot serve --listen 127.0.0.1:PORT --export bench=IMAGE
#   nbdkit -f --exit-with-parent -i 127.0.0.1 -p PORT file IMAGE   (16 threads, its default)
#   nbd-server -C LOGDIR/nbd-server.conf -p LOGDIR/nbd-server.pid   (daemon; fork per client;
#       export section: exportname, flush, fua, trim = true, as shared/research/server-anchors.md 3.2)
#   qemu-nbd -b 127.0.0.1 -p PORT -x bench -f raw -t --shared=16 IMAGE
#       (--shared: the default 1 would make 7 of fio's 8 clients wait; 16 leaves room
#        for fio's short size-probe connections)

: "${NBDBOOT:=.build/release/nbdboot}"
BENCH_SERVER_PID=""
BENCH_SERVER_NAME=""
BENCH_ALL_PIDS=()

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# The descendants of PID, deepest last, from the parent field (4th) of
# /proc/*/stat. Only processes we started are ever passed in.
bench_descendants() {
  local root frontier=("$1") next p stat line fields
  local -A parent_of=()
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue
    p=${line%% *}
    # The 2nd field (comm) is in parentheses and may hold spaces: cut after the last ')'.
    read -ra fields <<<"${line##*) }"
    parent_of[$p]=${fields[1]}
  done
  local depth
  for ((depth = 0; depth < 8 && ${#frontier[@]} > 0; depth++)); do
    next=()
    for p in "${!parent_of[@]}"; do
      for root in "${frontier[@]}"; do
        if [ "${parent_of[$p]}" = "$root" ]; then echo "$p"; next+=("$p"); fi
      done
    done
    frontier=("${next[@]}")
  done
}

# Kill PID and its descendants (by PID): SIGTERM, SIGKILL after 5 s.
bench_kill_tree() {
  local pid=$1 kids i p alive
  [ -n "$pid" ] || return 0
  kids=$(bench_descendants "$pid")
  # Under the caller's `set -e`: a process that is already gone is no error.
  kill "$pid" 2>/dev/null || true
  for p in $kids; do kill "$p" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do
    alive=0
    for p in "$pid" $kids; do kill -0 "$p" 2>/dev/null && alive=1 || true; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "$pid" $kids; do
    if kill -0 "$p" 2>/dev/null; then
      bench_log "bench: PID $p ignored SIGTERM for 5 s; killing it"
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  wait "$pid" 2>/dev/null || true
}

bench_stop() {
  local pid=$BENCH_SERVER_PID p keep=()
  BENCH_SERVER_PID=""
  bench_kill_tree "$pid"
  # Forget it, so that bench_stop_all never signals a recycled PID.
  for p in "${BENCH_ALL_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  BENCH_ALL_PIDS=("${keep[@]}")
}

bench_stop_all() {
  local p
  bench_stop
  for p in "${BENCH_ALL_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then bench_kill_tree "$p"; fi
  done
  BENCH_ALL_PIDS=()
}

bench_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

bench_has_cow() { "$NBDBOOT" serve --help 2>/dev/null | grep -q ',cow'; }

# Waits until a client completes the NBD handshake for EXPORT on PORT, or
# PID exits, or 20 s pass.
bench_wait_ready() {
  local port=$1 export=$2 pid=$3 i
  for ((i = 0; i < 200; i++)); do
    timeout 5 nbdinfo --size "nbd://127.0.0.1:$port/$export" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

bench_start() {
  local server=$1 port=$2 image=$3 dir=$4 mode=${5:-fio} overlays=${6:-$4/overlays} log export=bench i pid
  [ -f "$image" ] || bench_die "image '$image' does not exist"
  mkdir -p "$dir"
  log=$dir/$server.log
  bench_port_in_use "$port" && bench_die "127.0.0.1:$port is already in use: stop what listens there or set BENCH_PORT_BASE to a free range"
  [ "$mode" = storm ] && export=root
  case $server in
    nbdboot)
      local spec="$export=$image"
      if [ "$mode" = storm ] && bench_has_cow; then
        rm -rf "$overlays"; mkdir -p "$overlays"
        spec="$export=$image,cow,overlays=$overlays"
      fi
      "$NBDBOOT" serve --listen "127.0.0.1:$port" --export "$spec" 2>"$log" &
      pid=$! ;;
    nbdkit)
      nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$port" file "$image" 2>"$log" &
      pid=$! ;;
    qemu-nbd)
      qemu-nbd -b 127.0.0.1 -p "$port" -x "$export" -f raw -t --shared=16 "$image" 2>"$log" &
      pid=$! ;;
    nbd-server)
      local conf=$dir/nbd-server.conf pidfile=$dir/nbd-server.pid
      rm -f "$pidfile"
      {
        echo "[generic]"
        echo "  listenaddr = 127.0.0.1"
        echo "  port = $port"
        echo "  allowlist = true"
        echo "[$export]"
        echo "  exportname = $image"
        echo "  flush = true"
        echo "  fua = true"
        echo "  trim = true"
        if [ "$mode" = storm ]; then
          rm -rf "$overlays"; mkdir -p "$overlays"
          echo "  copyonwrite = true"
          echo "  cowdir = $overlays"
        fi
      } >"$conf"
      # Daemonizes: the PID comes from the pidfile, written after the fork.
      nbd-server -C "$conf" -p "$pidfile" >"$log" 2>&1 ||
        { cat "$log" >&2; bench_die "nbd-server did not start (config $conf, log above)"; }
      pid=""
      for ((i = 0; i < 100; i++)); do
        [ -s "$pidfile" ] && { pid=$(cat "$pidfile"); break; }
        sleep 0.1
      done
      [[ $pid =~ ^[0-9]+$ ]] || bench_die "nbd-server wrote no PID to $pidfile within 10 s (log: $log)" ;;
    *) bench_die "unknown server '$server' (nbdboot, nbdkit, nbd-server, qemu-nbd)" ;;
  esac
  BENCH_ALL_PIDS+=("$pid")
  BENCH_SERVER_PID=$pid; BENCH_SERVER_NAME=$server
  if ! bench_wait_ready "$port" "$export" "$pid"; then
    bench_log "bench: $server on 127.0.0.1:$port answered no handshake for export '$export' within 20 s; its log ($log):"
    tail -20 "$log" | sed 's/^/    /' >&2
    bench_stop
    bench_die "$server did not start"
  fi
}
