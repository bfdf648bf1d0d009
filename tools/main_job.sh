#!/usr/bin/env bash
# tools/main_job.sh — the main job: a simulation sweep of the flagship scenario with its
# planted bug.
#
# The flagship is the replicated key-value store of scenarios/trellis/scenarios/kv/ (three
# replicas, quorum reads and writes, replicas crashing and restarting on torn disks,
# partitions, slow and clogged links); its planted bug makes reads skip the quorum
# write-back, which breaks linearizability only when two reads race a write that reached a
# single replica. The job sweeps seeds with the bug on (progress line), stops at the first
# failing seed, shrinks its schedule, writes the replay file, replays it (it must reproduce),
# exports the run as a Chrome trace, and prints how to replay it and open the trace. Then
# 10,000 seeds without the bug must pass, the write-ahead-log scenario's sweep runs the same
# way, and the runnable examples run. Exits non-zero if anything does not behave so.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh release
trellis=build/release/tools/trellis
out_dir=build/main_job
mkdir -p "$out_dir"
workers=$(nproc)

echo "=== scenarios"
"$trellis" list

# sweep_planted SCENARIO: sweeps 1,000 seeds with the planted bug on; must find it. Sets
# $replay to the replay file the sweep wrote.
sweep_planted() {
  local scenario=$1
  echo "=== sweep: $scenario with its planted bug"
  set +e
  "$trellis" sweep "$scenario" --seeds=1000 --j="$workers" --options=planted_bug=on \
    --replay_dir="$out_dir" | tee "$out_dir/$scenario.sweep.log"
  local status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 1 ]; then
    echo "=== main job: the sweep should have found the planted bug (exit $status)"
    exit 1
  fi
  replay=$(sed -n 's/.*replay it: *trellis replay \(.*\)$/\1/p' "$out_dir/$scenario.sweep.log")
  echo "=== replay: $trellis replay $replay"
  set +e
  "$trellis" replay "$replay"
  status=$?
  set -e
  if [ "$status" -ne 1 ]; then
    echo "=== main job: the replay did not reproduce the failure (exit $status)"
    exit 1
  fi
}

sweep_planted kv
kv_replay=$replay
echo "=== trace: $trellis trace $kv_replay --format=chrome"
"$trellis" trace "$kv_replay" --format=chrome --out="$out_dir/kv.trace.json"

echo "=== sweep: kv without the bug (10,000 seeds must pass)"
"$trellis" sweep kv --seeds=10000 --j="$workers"

sweep_planted wal
echo "=== sweep: wal without the bug (10,000 seeds must pass)"
"$trellis" sweep wal --seeds=10000 --j="$workers"

status=0
for example in build/release/scenarios/example_*; do
  [ -x "$example" ] || continue
  echo "=== $(basename "$example")"
  "$example" || { echo "=== $(basename "$example") FAILED"; status=1; }
done
if [ "$status" -eq 0 ]; then
  echo "=== main job: done"
  echo "  replay the flagship failure:  $trellis replay $kv_replay"
  echo "  its Chrome trace:             $out_dir/kv.trace.json"
  echo "    (open it in https://ui.perfetto.dev or chrome://tracing)"
fi
exit $status
