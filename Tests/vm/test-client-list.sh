#!/usr/bin/env bash
# `nbd-client -l HOST [PORT]` of the static client against real servers, on the
# host (listing needs no kernel module): nbdkit with two named exports and a
# description, then nbd-server with two exports and allowlist = true. The
# output must match Debian's nbd-client 3.24 line for line (minus its
# "Negotiation:" progress line), and a refused connection must exit 1.
# Also the other ways to name a server: NBD URIs (nbd://, nbd+unix://) and
# IPv6 literals (nbdkit on ::1, loopback only), and their errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
. Tests/vm/client-lib.sh
client=.build/static/nbd-client
make -s "$client" >/dev/null
port_kit=$(free_port 21370 21373) port_srv=$(free_port 21374 21376) port_none=$(free_port 21377 21379) port_v6=$(free_port 21380 21382)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# nbdkit: exports alpha and beta, both described.
nbdkit -p $port_kit -i 127.0.0.1 -P "$tmp/kit.pid" --filter=exportname memory 1M \
  exportname=alpha exportname=beta exportname-list=explicit exportdesc=fixed:"a test disk"
wait_pidfile "$tmp/kit.pid"
pids+=("$(cat "$tmp/kit.pid")")
got=$("$client" -l 127.0.0.1 $port_kit)
want=$'alpha: a test disk\nbeta: a test disk'
[ "$got" = "$want" ] || fail "nbdkit list: got [$got], want [$want]"
ref=$(nbd-client -l 127.0.0.1 $port_kit 2>/dev/null | grep -v '^Negotiation:')
[ "$got" = "$ref" ] || fail "nbdkit list differs from nbd-client 3.24: [$got] vs [$ref]"
# Long option with two dashes, HOST only with the port as -l's neighbours.
got2=$("$client" --list 127.0.0.1 $port_kit)
[ "$got2" = "$want" ] || fail "--list: got [$got2]"
echo "ok nbdkit: $(tr '\n' ';' <<<"$got")"
# The same server named by a URI (the export part does not matter to -l).
got=$("$client" -l "nbd://127.0.0.1:$port_kit/alpha")
[ "$got" = "$want" ] || fail "-l nbd://127.0.0.1:$port_kit/alpha: got [$got]"
echo "ok URI nbd://127.0.0.1:$port_kit"

# IPv6: nbdkit on ::1 only; a bare literal, a bracketed one, and a URI.
nbdkit -p $port_v6 -i ::1 -P "$tmp/kit6.pid" --filter=exportname memory 1M exportname=six exportname-list=explicit
wait_pidfile "$tmp/kit6.pid"
pids+=("$(cat "$tmp/kit6.pid")")
for server in "::1 $port_v6" "[::1] $port_v6" "nbd://[::1]:$port_v6/six"; do
  # shellcheck disable=SC2086
  got=$("$client" -l $server) || fail "-l $server failed"
  [ "$got" = "six" ] || fail "-l $server: got [$got]"
done
echo "ok IPv6 ::1, [::1], nbd://[::1]:$port_v6/six"

# The same over a Unix socket (-u).
nbdkit -U "$tmp/kit.sock" -P "$tmp/kitu.pid" --filter=exportname memory 1M exportname=gamma exportname-list=explicit
wait_pidfile "$tmp/kitu.pid"
pids+=("$(cat "$tmp/kitu.pid")")
got=$("$client" -l -u "$tmp/kit.sock")
[ "$got" = "gamma" ] || fail "unix list: got [$got]"
got=$("$client" -l "nbd+unix:///gamma?socket=$tmp/kit.sock")
[ "$got" = "gamma" ] || fail "nbd+unix URI list: got [$got]"
echo "ok unix socket (-u and nbd+unix://): $got"

# URIs the client must refuse, naming the URI and the reason; exit 1.
check_refused() {
  local want=$1; shift
  set +e; msg=$("$client" "$@" 2>&1); rc=$?; set -e
  [ $rc -eq 1 ] || fail "$*: exit $rc, want 1 ($msg)"
  grep -q -- "$want" <<<"$msg" || fail "$*: message lacks '$want': $msg"
}
check_refused "TLS" -l "nbds://127.0.0.1/x"
check_refused "brackets" -l "nbd://::1:$port_v6/x"
check_refused "needs ?socket=PATH" -l "nbd+unix:///x"
check_refused "1 to 65535" -l "nbd://127.0.0.1:99999/x"
check_refused "disagree" "nbd://127.0.0.1:$port_kit/alpha" /dev/nbd0 -N beta
echo "ok bad URIs refused with a reason"

# nbd-server: two exports (no descriptions), listing allowed.
truncate -s 1M "$tmp/one.img" "$tmp/two.img"
cat >"$tmp/config" <<CONF
[generic]
allowlist = true
listenaddr = 127.0.0.1
port = $port_srv
[first]
exportname = $tmp/one.img
[second]
exportname = $tmp/two.img
CONF
nbd-server -C "$tmp/config" -p "$tmp/srv.pid"
wait_pidfile "$tmp/srv.pid"
pids+=("$(cat "$tmp/srv.pid")")
sleep 0.3
got=$("$client" -l 127.0.0.1 $port_srv | sort)
[ "$got" = $'first\nsecond' ] || fail "nbd-server list: got [$got]"
echo "ok nbd-server: $(tr '\n' ';' <<<"$got")"

# Nobody listening: exit 1 and say where.
set +e
msg=$("$client" -l 127.0.0.1 $port_none 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "refused connection: exit $rc, want 1"
grep -q "127.0.0.1:$port_none" <<<"$msg" || fail "refused connection: message does not name the server: $msg"
echo "ok refused: $msg"
echo "PASS test-client-list"
