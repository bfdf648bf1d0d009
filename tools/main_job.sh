#!/usr/bin/env bash
# tools/main_job.sh — the main job: a simulation sweep of the scenario with a planted bug.
#
# Until the flagship replicated key-value store lands (issue 7), the sweep runs the
# write-ahead-log scenario (scenarios/trellis/scenarios/wal/) with its planted bug on
# (acknowledging appends before fsync): it shows the progress line, finds the first failing
# seed, shrinks its schedule, writes a replay file and prints how to replay it; the replay is
# then run to show that it reproduces. A sweep with the bug off must find nothing. Finally
# the runnable examples (the Trio tutorial programs) run. Exits non-zero if anything does not
# behave so.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh release
trellis=build/release/tools/trellis
out_dir=build/main_job
mkdir -p "$out_dir"
workers=$(nproc)

echo "=== scenarios"
"$trellis" list

echo "=== sweep: wal with its planted bug (acknowledge before fsync)"
set +e
"$trellis" sweep wal --seeds=1000 --j="$workers" --options=planted_bug=on \
  --replay_dir="$out_dir" | tee "$out_dir/sweep.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 1 ]; then
  echo "=== main job: the sweep should have found the planted bug (exit $status)"; exit 1
fi
replay=$(sed -n 's/.*replay it: *trellis replay \(.*\)$/\1/p' "$out_dir/sweep.log")

echo "=== replay: $trellis replay $replay"
set +e
"$trellis" replay "$replay"
status=$?
set -e
if [ "$status" -ne 1 ]; then
  echo "=== main job: the replay did not reproduce the failure (exit $status)"; exit 1
fi

echo "=== sweep: wal without the bug (10,000 seeds must pass)"
"$trellis" sweep wal --seeds=10000 --j="$workers"

status=0
for example in build/release/scenarios/example_*; do
  [ -x "$example" ] || continue
  echo "=== $(basename "$example")"
  "$example" || { echo "=== $(basename "$example") FAILED"; status=1; }
done
[ "$status" -eq 0 ] && echo "=== main job: done (replay file: $replay)"
exit $status
