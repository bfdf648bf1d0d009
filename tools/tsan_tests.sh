#!/usr/bin/env bash
# tools/tsan_tests.sh — the thread-facing tests under ThreadSanitizer (build them first with
# `tools/setup.sh tsan`): Trio's ports (to_thread, from_thread, RunTokens, processes, signals,
# real-mode serving), the runtime's core tests, and guest mode (a helper thread beside the
# host's). Any report fails the run (TSan's exit code).
#
# Skipped, because TSan cannot model it: Fiber.TenThousandConcurrentlyBlockedTasks (each
# fiber is a TSan thread, and 10,000 exceed its limit of 8,128).
set -euo pipefail
cd "$(dirname "$0")/.."
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
build=build/tsan/tests
"$build/trellis_trio_tests" --gtest_brief=1
"$build/trellis_runtime_tests" --gtest_brief=1 \
  --gtest_filter='-Fiber.TenThousandConcurrentlyBlockedTasks'
"$build/trellis_guest_tests" --gtest_brief=1
echo "tsan: the thread-facing tests ran clean"
