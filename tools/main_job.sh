#!/usr/bin/env bash
# tools/main_job.sh — the main job. Until the simulator's flagship sweep exists (issues 5-7),
# it builds Trellis and runs the runnable examples (the Trio tutorial programs under
# scenarios/examples), failing if any of them does.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh release
status=0
for example in build/release/scenarios/example_*; do
  [ -x "$example" ] || continue
  echo "=== $(basename "$example")"
  "$example" || { echo "=== $(basename "$example") FAILED"; status=1; }
done
exit $status
