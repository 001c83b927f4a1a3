#!/usr/bin/env bash
# Tests of the benchmark harness's own logic, no server needed (about 2 s):
#  - scripts/bench-working-set.py: an nbdkit log-filter log becomes the
#    expected OP OFFSET LENGTH lines; malformed files are refused with the
#    file and line named; the committed Tests/bench/boot-working-set.txt loads
#  - scripts/bench-station.py plan(): the working set stays in order and the
#    station's own writes are all there, in bounds
#  - scripts/bench-report.py: medians over rounds, nbdboot's ratios and the
#    issue 4 targets, from hand-made fio JSON files; the chart is a PNG
#  - scripts/bench.sh: bad arguments exit 2 with a message
# Exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
work=$(mktemp -d /tmp/nbdboot-bench-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- working set ------------------------------------------------------------
cat >"$work/log" <<'EOF'
2026-11-21 06:14:58.258277 Ready thread_model=3
2026-11-21 06:14:58.883752 Preconnect id=1 readonly=0 ...
2026-11-21 06:14:58.883959 connection=1 Connect export=root tls=0 size=0x400000 minsize=0x0 write=1
2026-11-21 06:14:58.884187 connection=1 Read id=1 offset=0x2000 count=0x1000 ...
2026-11-21 06:14:58.884209 connection=1 ...Read id=1 return=0
2026-11-21 06:14:58.884318 connection=1 Write id=2 offset=0x200 count=0x200 fua=0 ...
2026-11-21 06:14:58.884337 connection=1 ...Write id=2 return=0
2026-11-21 06:14:58.884365 connection=1 Flush id=3 ...
2026-11-21 06:14:58.885023 connection=1 Trim id=4 offset=0x0 count=0x1000 fua=0 ...
2026-11-21 06:14:58.885221 connection=1 Zero id=5 offset=0x10000 count=0x1000 trim=1 fua=0 fast=0 ...
2026-11-21 06:14:58.886750 connection=1 Disconnect transactions=5
EOF
$PY scripts/bench-working-set.py convert "$work/log" 4194304 "a header" >"$work/ws.txt"
got=$(grep -v '^#' "$work/ws.txt")
want=$'image-size 4194304\nR 8192 4096\nW 512 512\nF 0 0\nT 0 4096\nZ 65536 4096'
[ "$got" = "$want" ] || fail "converted working set is
$got
expected
$want"
grep -q '^# a header$' "$work/ws.txt" || fail "the header line was not written"

printf 'image-size 4096\nR 0 4096\nX 1 2\n' >"$work/bad.txt"
if msg=$($PY scripts/bench-working-set.py summary "$work/bad.txt" 2>&1); then fail "a bad op was accepted"; fi
[[ $msg == *"bad.txt:3:"*"'X 1 2'"* ]] || fail "bad-op message does not name file and line: $msg"
printf 'image-size 4096\nR 0 8192\n' >"$work/past.txt"
if msg=$($PY scripts/bench-working-set.py summary "$work/past.txt" 2>&1); then fail "a read past the end was accepted"; fi
[[ $msg == *"past image-size 4096"* ]] || fail "past-end message: $msg"
$PY scripts/bench-working-set.py summary Tests/bench/boot-working-set.txt >/dev/null || fail "the committed working set does not load"

# --- station plan -----------------------------------------------------------
$PY - <<'EOF' || fail "bench-station.py plan()"
import importlib.util, sys
sys.modules["nbd"] = type(sys)("nbd")          # plan() needs no libnbd
spec = importlib.util.spec_from_file_location("st", "scripts/bench-station.py")
st = importlib.util.module_from_spec(spec); spec.loader.exec_module(st)
size, reqs = st.working_set.load("Tests/bench/boot-working-set.txt")
p = st.plan(7, reqs, size, 4)
own = [r for r in p if r not in reqs or r[2] == st.WRITE_BS and r[0] == "W"]
assert [r for r in p if r in reqs and not (r[0] == "W" and r[2] == st.WRITE_BS)] == \
       [r for r in reqs if not (r[0] == "W" and r[2] == st.WRITE_BS)], "recorded order changed"
assert sum(1 for r in p if r[0] == "W" and r[2] == st.WRITE_BS) >= 64, "own writes missing"
assert all(off + cnt <= size for _, off, cnt in p), "request past the image"
assert st.plan(7, reqs, size, 4) == p and st.plan(8, reqs, size, 4) != p, "plan not deterministic per station"
assert p[0] == reqs[0] and len(st.plan(1, reqs, size, 0)) == len(reqs)
EOF

# --- report -----------------------------------------------------------------
mkdir -p "$work/run/raw"
fio_json() { # FILE SIDE BW_BYTES IOPS P50_NS P99_NS
  cat >"$1" <<EOF
{"jobs": [{"error": 0,
  "read": {"io_bytes": $([ "$2" = read ] && echo 100 || echo 0), "bw_bytes": $3, "iops": $4,
           "clat_ns": {"mean": $5, "percentile": {"50.000000": $5, "99.000000": $6}}},
  "write": {"io_bytes": $([ "$2" = write ] && echo 100 || echo 0), "bw_bytes": $3, "iops": $4,
           "clat_ns": {"mean": $5, "percentile": {"50.000000": $5, "99.000000": $6}}}}]}
EOF
}
# nbdboot 1000/3000/2000 MB/s (median 2000), nbdkit 1000/1000/4000 (median 1000)
fio_json "$work/run/raw/round1-nbdboot-seqread.json" read 1000000000 1000 5000 9000
fio_json "$work/run/raw/round2-nbdboot-seqread.json" read 3000000000 3000 5000 9000
fio_json "$work/run/raw/round3-nbdboot-seqread.json" read 2000000000 2000 5000 9000
fio_json "$work/run/raw/round1-nbdkit-seqread.json" read 1000000000 1000 7000 9000
fio_json "$work/run/raw/round2-nbdkit-seqread.json" read 1000000000 1000 7000 9000
fio_json "$work/run/raw/round3-nbdkit-seqread.json" read 4000000000 4000 7000 9000
# randwrite: IOPS is the headline; nbdboot 50k vs nbdkit 60k
for r in 1 2 3; do
  fio_json "$work/run/raw/round$r-nbdboot-randwrite.json" write 200000000 50000 300000 900000
  fio_json "$work/run/raw/round$r-nbdkit-randwrite.json" write 240000000 60000 300000 900000
done
cat >"$work/run/meta.json" <<'EOF'
{"rounds": 3, "runtime_s": 5, "ramp_s": 1, "servers": ["nbdboot", "nbdkit"],
 "workloads": [{"name": "seqread", "fio": "--rw=read"}, {"name": "randwrite", "fio": "--rw=randwrite"}]}
EOF
$PY scripts/bench-report.py report "$work/run" >"$work/table.txt" || fail "bench-report.py report failed"
$PY - "$work/run/results.json" <<'EOF' || fail "results.json figures"
import json, sys
r = json.load(open(sys.argv[1]))
w = {e["name"]: e for e in r["workloads"]}
assert w["seqread"]["servers"]["nbdboot"]["median"] == 2000.0, w["seqread"]
assert w["seqread"]["servers"]["nbdkit"]["median"] == 1000.0
assert w["seqread"]["ratio_nbdboot_to"]["nbdkit"] == 2.0 and w["seqread"]["targets"]["nbdkit"]["met"]
assert w["randwrite"]["metric"] == "IOPS" and abs(w["randwrite"]["ratio_nbdboot_to"]["nbdkit"] - 0.833) < 0.001
assert not w["randwrite"]["targets"]["nbdkit"]["met"]
assert w["randwrite"]["servers"]["nbdboot"]["p99_us_median"] == 900.0
EOF
grep -q '| seqread | MB/s | 2000 (5 µs / 9 µs) | 1000 (7 µs / 9 µs) | 2.00× ✓ (≥1.0) |' "$work/table.txt" ||
  fail "table row for seqread: $(grep seqread "$work/table.txt")"
[ "$(head -c 4 "$work/run/chart.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "chart.png is not a PNG"

# --- command line -----------------------------------------------------------
set +e
out=$(scripts/bench.sh --bogus 2>&1); rc=$?
set -e
[ "$rc" = 2 ] && [[ $out == *"unknown argument '--bogus'"* ]] || fail "bench.sh --bogus: exit $rc, '$out'"
set +e
out=$(scripts/bench.sh --storm 300 2>&1); rc=$?
set -e
[ "$rc" = 2 ] && [[ $out == *"must be 1-256"* ]] || fail "bench.sh --storm 300: exit $rc, '$out'"
set +e
out=$(BENCH_RUNTIME=5s scripts/bench.sh 2>&1); rc=$?
set -e
[ "$rc" = 2 ] && [[ $out == *"BENCH_RUNTIME '5s' is not a whole number"* ]] || fail "BENCH_RUNTIME=5s: exit $rc, '$out'"
echo "PASS: bench harness tools (working set, station plan, report, command line)"
