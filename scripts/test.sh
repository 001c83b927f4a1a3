#!/usr/bin/env bash
# Runs every test and ends with one line `N passed, N failed` that counts them
# all: each Swift test case, and each end-to-end script (Tests/e2e/*.sh with
# real peers, Tests/vm/*.sh with QEMU stations).
#   scripts/test.sh [--only unit|e2e|vm] [--filter SUBSTRING]
# (--only e2e also runs Tests/bench/test-*.sh, the benchmark tools' self-test.)
# An end-to-end script passes when it exits 0; its output goes to a log that is
# printed when it fails.
set -uo pipefail
cd "$(dirname "$0")/.."
only=""; filter=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    *) echo "test.sh: unknown argument $1 (use --only unit|e2e|vm, --filter TEXT)" >&2; exit 2 ;;
  esac
done
logs=${TEST_LOGS:-.build/test-logs}
rm -rf "$logs"; mkdir -p "$logs"
passed=0; failed=0; failures=()

if [ -z "$only" ] || [ "$only" = unit ]; then
  echo "== swift test"
  swift test 2>&1 | tee "$logs/swift-test.log" | grep -E "^Test Case .* (passed|failed)|error:|XCTAssert" | grep -v " passed " || true
  # XCTest's last summary: "Executed N tests, with M failures".
  summary=$(grep -E "Executed [0-9]+ tests?, with [0-9]+ failures?" "$logs/swift-test.log" | tail -1)
  if [ -z "$summary" ]; then
    echo "swift test did not run (build failure?): see $logs/swift-test.log"; tail -20 "$logs/swift-test.log"
    failed=$((failed + 1)); failures+=("swift test (no summary)")
  else
    n=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
    f=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$summary")
    passed=$((passed + n - f)); failed=$((failed + f))
    echo "swift test: $((n - f)) passed, $f failed"
    [ "$f" -gt 0 ] && failures+=($(grep -E "^Test Case .* failed" "$logs/swift-test.log" | sed -E "s/^Test Case '([^']*)'.*/\1/"))
  fi
fi

run_scripts() {
  local kind=$1
  for t in Tests/$kind/test-*.sh; do
    [ -e "$t" ] || continue
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    local name log start
    name=$(basename "$t" .sh); log="$logs/$kind-$name.log"; start=$SECONDS
    if bash "$t" >"$log" 2>&1; then
      passed=$((passed + 1)); echo "PASS $kind/$name ($((SECONDS - start)) s)"
    else
      failed=$((failed + 1)); failures+=("$kind/$name"); echo "FAIL $kind/$name ($((SECONDS - start)) s), last lines of $log:"
      tail -25 "$log" | sed 's/^/    /'
    fi
  done
}
if [ -z "$only" ] || [ "$only" = e2e ]; then
  echo "== end-to-end with real peers"; run_scripts e2e
  echo "== benchmark tools (no server)"; run_scripts bench
fi
if [ -z "$only" ] || [ "$only" = vm ]; then echo "== QEMU stations"; run_scripts vm; fi

[ ${#failures[@]} -gt 0 ] && { echo "failed:"; printf '  %s\n' "${failures[@]}"; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
