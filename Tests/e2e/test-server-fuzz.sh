#!/usr/bin/env bash
# A short libFuzzer pass (15 s, FUZZ_SECONDS overrides) over the server's
# handshake state machine and request gate, the client handshake, the config
# and allow-list parsers and the NBDWire decoders (scripts/fuzz.sh builds the
# target with swiftc -sanitize=fuzzer,address on first use). Fails on any
# crash, sanitizer report, timeout or out-of-memory. First checks that the
# seed corpus replays cleanly and that a broken property reaches libFuzzer as
# a crash (the self-test input of FuzzEntry.swift), so a pass means something.
set -uo pipefail
cd "$(dirname "$0")/../.."
scripts/fuzz.sh --build-only > /tmp/nbdboot-fuzz-build.$$ 2>&1 || { cat /tmp/nbdboot-fuzz-build.$$ >&2; rm -f /tmp/nbdboot-fuzz-build.$$; echo "FAIL: the fuzz target does not build" >&2; exit 1; }
rm -f /tmp/nbdboot-fuzz-build.$$
SWIFT_BACKTRACE=enable=no .build/fuzz/fuzz-nbd -runs=0 Tests/fuzz/corpus/* > .build/fuzz/seeds.log 2>&1 || { tail -30 .build/fuzz/seeds.log >&2; echo "FAIL: a seed input crashes the target" >&2; exit 1; }
seeds=$(ls Tests/fuzz/corpus | wc -l)
printf 'nbdboot fuzz self-test' > .build/fuzz/self-test.input
if SWIFT_BACKTRACE=enable=no .build/fuzz/fuzz-nbd .build/fuzz/self-test.input > .build/fuzz/self-test.log 2>&1; then
  echo "FAIL: the self-test input did not crash the target: $(tail -5 .build/fuzz/self-test.log)" >&2; exit 1
fi
grep -q "fuzz property violated: self-test input" .build/fuzz/self-test.log || { tail -20 .build/fuzz/self-test.log >&2; echo "FAIL: the self-test crash has no property message" >&2; exit 1; }
grep -q "Running: Tests/fuzz/corpus/server-go-all-commands" .build/fuzz/seeds.log || { echo "FAIL: the seeds did not run: $(tail -5 .build/fuzz/seeds.log)" >&2; exit 1; }
FUZZ_SECONDS=${FUZZ_SECONDS:-15} scripts/fuzz.sh > .build/fuzz/e2e.log 2>&1 || { grep -v "^#\|^INFO" .build/fuzz/e2e.log | tail -40 >&2; echo "FAIL: the fuzz pass found a crash (see above)" >&2; exit 1; }
echo "PASS: $seeds seeds replay cleanly; $(tail -1 .build/fuzz/e2e.log | sed 's/^fuzz.sh: //')"
