# Shared helpers for Tests/e2e/test-server-*.sh (source it; it cds to the repo root).
#   start_server NAME ARGS...   runs `$NBDBOOT serve ARGS...` in the background, logging to
#                               $WORK/NAME.log, waits (10 s max) for its "listening on" line,
#                               sets SERVER_PID; a trap kills it on exit
#   free_port BASE              first port in BASE..BASE+9 nobody listens on (127.0.0.1)
#   wait_port PORT              waits (10 s max) until 127.0.0.1:PORT accepts connections
#   stop_server PID             SIGTERM, then checks it exits 0 within 10 s
#   fail MESSAGE / pass MESSAGE
# Servers listen on 127.0.0.1 only, on ports 20800-20899.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
NBDBOOT=${NBDBOOT:-.build/release/nbdboot}
if [ ! -x "$NBDBOOT" ]; then
  echo "FAIL: $NBDBOOT is not built; run 'swift build -c release' (or make build) first" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/nbdboot-e2e-server.XXXXXX)
SERVER_PIDS=()
SERVER_PID=""
# nbdsh: /usr/bin/nbdsh is a shell wrapper around `python3 -m nbd`; call Debian's interpreter
# directly so another python3 first in PATH cannot shadow it (python3-libnbd package).
NBDSH=(/usr/bin/python3 -m nbd)

cleanup() {
  local p
  for p in "${SERVER_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$WORK"/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -30 "$f" >&2; }
  done
  exit 1
}

pass() { echo "PASS: $*"; }

free_port() {
  local base=$1 p
  for p in $(seq "$base" $((base + 9))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  fail "no free port in $base..$((base + 9))"
}

wait_port() {
  local port=$1
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on 127.0.0.1:$port after 10 s"
}

start_server() {
  local name=$1; shift
  local log="$WORK/$name.log"
  : > "$log"
  "$NBDBOOT" serve "$@" 2>"$log" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do
    grep -q "listening on" "$log" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server '$name' exited before listening: $(cat "$log")"
    sleep 0.1
  done
  fail "server '$name' did not print 'listening on' within 10 s"
}

stop_server() {
  local pid=$1 rc
  kill -TERM "$pid" 2>/dev/null || fail "server $pid is not running"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "server $pid still runs 10 s after SIGTERM"
  wait "$pid"; rc=$?
  [ "$rc" = 0 ] || fail "server $pid exited $rc after SIGTERM, expected 0"
}
