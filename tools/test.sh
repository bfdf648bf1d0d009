#!/usr/bin/env bash
# tools/test.sh — the test command: set up, then build and run every test twice, in an
# optimized build and in an AddressSanitizer + UndefinedBehaviorSanitizer build; the
# thread-facing tests under ThreadSanitizer; then short, bounded runs of the libFuzzer
# targets (clang).
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: done in $((SECONDS - start)) s"
}

phase "setup + build (release)" tools/setup.sh release
phase "ctest (release)" ctest --preset release
phase "build (asan+ubsan)" tools/setup.sh asan
phase "ctest (asan+ubsan)" ctest --preset asan
phase "build (tsan)" tools/setup.sh tsan
phase "thread-facing tests (tsan)" tools/tsan_tests.sh
phase "build (fuzz)" tools/setup.sh fuzz
phase "fuzz smoke" tools/fuzz/smoke.sh
echo "=== all tests passed"
