#!/usr/bin/env bash
# nbdboot's server benchmark (`make bench`, which builds nbdboot first):
# nbdboot serve, nbdkit, nbd-server and qemu-nbd side by side on 127.0.0.1
# over the same 1 GiB image in tmpfs, measured with fio's nbd engine.
#
#   scripts/bench.sh                 fio workloads, all four servers
#   scripts/bench.sh --storm [N]     boot storm: N stations (default 32, 1-256)
#                                    against nbdboot and nbd-server copy-on-write
#   scripts/bench.sh --servers "nbdboot nbdkit"   only these servers (fio part)
#
# Environment:
#   BENCH_ROUNDS     rounds, each server once per round, order rotated (default 3)
#   BENCH_RUNTIME    seconds fio measures each workload (default 5)
#   BENCH_RAMP       seconds fio runs before measuring (default 1)
#   BENCH_QUICK=1    smoke run: 1 round, 2 s, no ramp
#   BENCH_OUT        results folder (default results/bench-YYYYMMDD-HHMMSS)
#   BENCH_PORT_BASE  first of the ports used (default 21500; +0..+3 fio servers,
#                    +10/+12 storm, +20 bench-record-boot.sh)
#   BENCH_IMAGE_DIR  where the image goes (default /dev/shm: tmpfs)
#   NBDBOOT          the nbdboot executable (default .build/release/nbdboot)
#
# Workloads (fio --ioengine=nbd, one connection per fio job, --time_based):
#   seqread     --rw=read      --bs=1m --iodepth=8              MB/s
#   seqwrite    --rw=write     --bs=1m --iodepth=8              MB/s
#   randread    --rw=randread  --bs=4k --iodepth=32             IOPS
#   randwrite   --rw=randwrite --bs=4k --iodepth=32             IOPS
#   randread-qd1 --rw=randread --bs=4k --iodepth=1              IOPS, latency
#   randread-8c --rw=randread  --bs=4k --iodepth=4 --numjobs=8  IOPS (8 connections,
#               32 requests in flight in all, as randread: what more connections buy)
#
# Output: a table (medians over rounds; nbdboot's ratio to each peer), and in
# the results folder: results.json, table.md, chart.png, raw/ (every fio JSON),
# logs/ (server logs), machine.txt (uptime before/after, versions).
# Every server is stopped by PID on every exit path; every fio run is bounded
# by `timeout`. Exit status: 0 when every run completed, 1 otherwise, 2 for
# a bad argument or setting (checked before anything starts).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
storm=""; servers_arg=""
while [ $# -gt 0 ]; do
  case $1 in
    --storm)
      storm=32
      if [[ ${2:-} =~ ^[0-9]+$ ]]; then storm=$2; shift; fi
      shift ;;
    --servers) servers_arg=${2:-}; shift 2 || { echo "bench.sh: --servers needs a list, e.g. --servers \"nbdboot nbdkit\"" >&2; exit 2; } ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (use --storm [N], --servers LIST, --help)" >&2; exit 2 ;;
  esac
done

usage_error() { echo "bench.sh: $*" >&2; exit 2; }
if [ -n "$storm" ]; then
  [ "$storm" -ge 1 ] && [ "$storm" -le 256 ] || usage_error "--storm $storm: the number of stations must be 1-256"
fi
for s in $servers_arg; do
  case $s in nbdboot|nbdkit|nbd-server|qemu-nbd) ;; *) usage_error "--servers: unknown server '$s' (nbdboot nbdkit nbd-server qemu-nbd)" ;; esac
done
for v in BENCH_ROUNDS BENCH_RUNTIME BENCH_RAMP BENCH_STORM_ROUNDS BENCH_STORM_WRITE_MIB BENCH_STORM_TIMEOUT BENCH_STORM_CONNECT_TIMEOUT; do
  [ -z "${!v:-}" ] || [[ ${!v} =~ ^[0-9]+$ ]] || usage_error "$v '${!v}' is not a whole number"
done

. scripts/bench-servers.sh
NBDBOOT=$repo/${NBDBOOT#"$repo/"}
[ -x "$NBDBOOT" ] || bench_die "no nbdboot executable at $NBDBOOT: run make build (make bench does)"
for tool in fio nbdkit nbd-server qemu-nbd nbdinfo; do
  command -v "$tool" >/dev/null || bench_die "$tool is not installed: run scripts/deps.sh (make deps)"
done
# The report and the station simulator use Debian's python3 (libnbd's `nbd`
# module comes from python3-libnbd, matplotlib from python3-matplotlib).
PY=/usr/bin/python3
if ! $PY -c 'import matplotlib, nbd' 2>/dev/null; then
  echo "bench: installing python3-matplotlib python3-libnbd (Debian) for the chart and the station simulator" >&2
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -qq --no-install-recommends python3-matplotlib python3-libnbd >/dev/null 2>&1 ||
    { $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq --no-install-recommends python3-matplotlib python3-libnbd >/dev/null; } ||
    bench_die "could not install python3-matplotlib python3-libnbd with apt-get"
fi

port_base=${BENCH_PORT_BASE:-21500}
[[ $port_base =~ ^[0-9]+$ && $port_base -ge 1024 && $port_base -le 65500 ]] || bench_die "BENCH_PORT_BASE '$port_base' is not a port in 1024-65500"
stamp=$(date -u +%Y%m%d-%H%M%S)
out=${BENCH_OUT:-$repo/results/bench-$stamp}
[ -n "$storm" ] && out=${BENCH_OUT:-$repo/results/storm-$stamp}
mkdir -p "$out/raw" "$out/logs"
imgdir=${BENCH_IMAGE_DIR:-/dev/shm}
[ -d "$imgdir" ] && [ -w "$imgdir" ] || bench_die "BENCH_IMAGE_DIR '$imgdir' is not a writable directory"
work=$(mktemp -d "$imgdir/nbdboot-bench.XXXXXX")

cleanup() {
  bench_stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'bench_log "bench: interrupted"; exit 130' INT
trap 'bench_log "bench: terminated"; exit 143' TERM

machine_note() {
  { echo "== $1 $(date -u +%FT%TZ)"; uptime; } >>"$out/machine.txt"
}
machine_note "before"
{
  echo "nproc: $(nproc); $(grep MemTotal /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "fio: $(fio --version)"
  echo "nbdkit: $(nbdkit --version)"
  echo "nbd-server: $(nbd-server -V 2>&1 | head -1)"
  echo "qemu-nbd: $(qemu-nbd --version | head -1)"
  echo "nbdboot: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
} >>"$out/machine.txt"

if [ -n "$storm" ]; then
  . scripts/bench-storm.sh
  storm_main "$storm"
  machine_note "after"
  exit "$storm_status"
fi

# ---- fio part ---------------------------------------------------------------
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  rounds=${BENCH_ROUNDS:-1}; runtime=${BENCH_RUNTIME:-2}; ramp=${BENCH_RAMP:-0}
else
  rounds=${BENCH_ROUNDS:-3}; runtime=${BENCH_RUNTIME:-5}; ramp=${BENCH_RAMP:-1}
fi
for v in rounds runtime ramp; do
  [[ ${!v} =~ ^[0-9]+$ ]] || bench_die "BENCH_${v^^} '${!v}' is not a whole number"
done
[ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ] || bench_die "BENCH_ROUNDS $rounds: use 1-20"
[ "$runtime" -ge 1 ] && [ "$runtime" -le 120 ] || bench_die "BENCH_RUNTIME $runtime: use 1-120 seconds"

all_servers=(nbdboot nbdkit nbd-server qemu-nbd)
if [ -n "$servers_arg" ]; then
  read -ra servers <<<"$servers_arg"
  for s in "${servers[@]}"; do
    [[ " ${all_servers[*]} " == *" $s "* ]] || bench_die "--servers: unknown server '$s' (nbdboot nbdkit nbd-server qemu-nbd)"
  done
else
  servers=("${all_servers[@]}")
fi
declare -A port_of=([nbdboot]=$port_base [nbdkit]=$((port_base + 1)) [nbd-server]=$((port_base + 2)) [qemu-nbd]=$((port_base + 3)))

# name|fio options
workloads=(
  "seqread|--rw=read --bs=1m --iodepth=8"
  "seqwrite|--rw=write --bs=1m --iodepth=8"
  "randread|--rw=randread --bs=4k --iodepth=32"
  "randwrite|--rw=randwrite --bs=4k --iodepth=32"
  "randread-qd1|--rw=randread --bs=4k --iodepth=1"
  "randread-8c|--rw=randread --bs=4k --iodepth=4 --numjobs=8"
)

# The image: 1 GiB of deterministic, incompressible-looking data (a
# SplitMix64 stream, the same bytes on every run), so no server can skip
# holes or zeroes.
img=$work/bench.img
bench_log "bench: writing the 1 GiB image $img"
$PY - "$img" <<'EOF'
import sys
M = (1 << 64) - 1
def splitmix(seed, n):
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) & M
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out)
block = splitmix(0x6E62646E626F6F74, 8192)          # 64 KiB
with open(sys.argv[1], "wb") as f:
    for mib in range(1024):
        # each MiB differs: its 16 blocks of 64 KiB are rotations of the base block
        for k in range(16):
            r = ((mib * 16 + k) * 4104) % len(block)
            f.write(block[r:] + block[:r])
EOF
[ "$(stat -c %s "$img")" = 1073741824 ] || bench_die "the image $img is not 1 GiB"

n_workloads=${#workloads[@]}
total=$((rounds * ${#servers[@]} * n_workloads))
bench_log "bench: ${#servers[@]} servers x $n_workloads workloads x $rounds rounds, ${runtime}s each (+${ramp}s ramp): about $(((runtime + ramp + 1) * total / 60 + 1)) min"
failures=0; done_runs=0
fio_limit=$((runtime + ramp + 60))
for ((round = 1; round <= rounds; round++)); do
  n=${#servers[@]}
  for ((k = 0; k < n; k++)); do
    server=${servers[$(((round - 1 + k) % n))]}
    port=${port_of[$server]}
    bench_start "$server" "$port" "$img" "$out/logs/round$round"
    for w in "${workloads[@]}"; do
      name=${w%%|*}; opts=${w#*|}
      raw=$out/raw/round$round-$server-$name.json
      done_runs=$((done_runs + 1))
      printf 'bench: [%d/%d] round %d %-10s %-13s ' "$done_runs" "$total" "$round" "$server" "$name" >&2
      # shellcheck disable=SC2086
      if (cd "$work" && timeout -k 5 "$fio_limit" fio --name="$name" --ioengine=nbd \
            --uri="nbd://127.0.0.1:$port/bench" $opts --size=1g --time_based \
            --runtime="$runtime" --ramp_time="$ramp" --group_reporting \
            --output-format=json --output="$raw.tmp" >"$out/logs/fio-last.txt" 2>&1); then
        mv "$raw.tmp" "$raw"
        $PY scripts/bench-report.py brief "$raw" >&2 || echo >&2
      else
        rc=$?
        failures=$((failures + 1))
        echo "FAILED (fio exit $rc$([ "$rc" = 124 ] && echo ": timeout after ${fio_limit}s")); see $out/logs/fio-round$round-$server-$name.txt" >&2
        cp "$out/logs/fio-last.txt" "$out/logs/fio-round$round-$server-$name.txt"
        rm -f "$raw.tmp"
        # A server that died stays dead for the rest of its turn: restart it.
        kill -0 "$BENCH_SERVER_PID" 2>/dev/null || { bench_stop; bench_start "$server" "$port" "$img" "$out/logs/round$round"; }
      fi
    done
    bench_stop
  done
done
machine_note "after"

{
  echo "{"
  echo "  \"date\": \"$(date -u +%FT%TZ)\","
  echo "  \"rounds\": $rounds, \"runtime_s\": $runtime, \"ramp_s\": $ramp,"
  echo "  \"servers\": [$(printf '"%s",' "${servers[@]}" | sed 's/,$//')],"
  echo "  \"workloads\": [$(for w in "${workloads[@]}"; do printf '{"name": "%s", "fio": "%s"},' "${w%%|*}" "${w#*|}"; done | sed 's/,$//')],"
  echo "  \"command\": \"BENCH_QUICK=${BENCH_QUICK:-0} BENCH_ROUNDS=$rounds BENCH_RUNTIME=$runtime BENCH_RAMP=$ramp scripts/bench.sh${servers_arg:+ --servers '$servers_arg'}\","
  echo "  \"fio_command\": \"fio --name=W --ioengine=nbd --uri=nbd://127.0.0.1:PORT/bench OPTIONS --size=1g --time_based --runtime=$runtime --ramp_time=$ramp --group_reporting --output-format=json\""
  echo "}"
} >"$out/meta.json"
$PY scripts/bench-report.py report "$out" || bench_die "the report failed (raw results in $out/raw)"
echo "results: $out (results.json, table.md, chart.png; machine load in machine.txt)"
[ "$failures" = 0 ] || { bench_log "bench: $failures fio run(s) failed (logs in $out/logs)"; exit 1; }
