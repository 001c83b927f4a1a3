#!/usr/bin/env bash
# Builds the libFuzzer target and runs it for a bounded time.
#   scripts/fuzz.sh [--build-only] [EXTRA LIBFUZZER ARGS...]
#   FUZZ_SECONDS=600 scripts/fuzz.sh        # default 60 s
# The target (Tests/fuzz/*.swift) drives the server's handshake state machine
# and request gate, the client's handshake, the config-file and allow-list
# parsers and every NBDWire decoder (Tests/fuzz/FuzzEntry.swift). It is built
# with `swiftc -sanitize=fuzzer,address` in two steps: NBDWire as a static
# library and module, then the fuzz module from Tests/fuzz plus the pure
# NBDServer files (no I/O, no LinuxSys). Inputs that grow coverage go to
# .build/fuzz/corpus (seeded from Tests/fuzz/corpus); a crash is saved as
# .build/fuzz/crash-* and the script exits 1. Replay one with
#   .build/fuzz/fuzz-nbd .build/fuzz/crash-...
set -euo pipefail
# Swift's own crash backtracer trips AddressSanitizer (it reads its own memory
# from a helper thread); the fatal error line and libFuzzer's report suffice.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
cd "$(dirname "$0")/.."
SWIFTC=${SWIFTC:-swiftc}
OUT=.build/fuzz
SECONDS_TO_RUN=${FUZZ_SECONDS:-60}
SANITIZERS=${FUZZ_SANITIZERS:-fuzzer,address}
SERVER_FILES=(ServerHandshake RequestGate AllowList ConfigFile ConfigKeys Config ExportPolicy StationOptions StationIdentity)
build_only=false
if [ "${1:-}" = --build-only ]; then build_only=true; shift; fi
case "$SECONDS_TO_RUN" in ''|*[!0-9]*) echo "fuzz.sh: FUZZ_SECONDS='$SECONDS_TO_RUN' is not a whole number of seconds" >&2; exit 2 ;; esac
mkdir -p "$OUT/corpus" "$OUT/wire"

sources=(Tests/fuzz/*.swift)
for f in "${SERVER_FILES[@]}"; do sources+=("Sources/NBDServer/$f.swift"); done
newest=$(ls -t Sources/NBDWire/*.swift "${sources[@]}" "$0" | head -1)
if [ ! -x "$OUT/fuzz-nbd" ] || [ "$newest" -nt "$OUT/fuzz-nbd" ]; then
  echo "fuzz.sh: building $OUT/fuzz-nbd (-sanitize=$SANITIZERS)"
  "$SWIFTC" -parse-as-library -O -g -sanitize="$SANITIZERS" -module-name NBDWire \
    -emit-library -static -emit-module -emit-module-path "$OUT/wire/NBDWire.swiftmodule" \
    -o "$OUT/wire/libNBDWire.a" Sources/NBDWire/*.swift
  "$SWIFTC" -parse-as-library -O -g -sanitize="$SANITIZERS" -module-name NBDFuzz -use-ld=lld \
    -I "$OUT/wire" -L "$OUT/wire" -lNBDWire -o "$OUT/fuzz-nbd" "${sources[@]}"
fi
$build_only && exit 0

echo "fuzz.sh: running for $SECONDS_TO_RUN s (corpus $OUT/corpus, seeds Tests/fuzz/corpus)"
set +e
"$OUT/fuzz-nbd" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$OUT/" "$@" "$OUT/corpus" Tests/fuzz/corpus 2>&1 | tee "$OUT/last-run.log" | grep -v "^#[0-9].*\(NEW\|REDUCE\)"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
  echo "fuzz.sh: FAILED (exit $rc); the input is saved as $(ls -t "$OUT"/crash-* "$OUT"/timeout-* "$OUT"/oom-* 2>/dev/null | head -1); full log $OUT/last-run.log" >&2
  exit 1
fi
echo "fuzz.sh: no crash in $SECONDS_TO_RUN s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/last-run.log" | grep -o '[0-9]*$') inputs)"
