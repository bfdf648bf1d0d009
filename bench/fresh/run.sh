#!/usr/bin/env bash
# Cold figures, the way a user's test binary meets them: every measurement is a fresh process,
# the arms alternate within each round, and the table shows medians of REPS rounds and the
# ratio of Trellis to the floor (raw Boost.Context, stacks given at first run and recycled).
#
#   bench/fresh/run.sh [BUILD_DIR]       # default build/release; REPS=5 N=100000
#
# Raw lines go to stdout as they come; the table follows. For Go, Boost.Fiber and Trio beside
# these, see ../shared/peers (its README).
set -euo pipefail
build=${1:-build/release}
bin="$build/bench/trellis_fresh_bench"
[[ -x $bin ]] || { echo "run.sh: $bin not built (cmake --build $build --target trellis_fresh_bench)" >&2; exit 2; }
REPS=${REPS:-5}
N=${N:-100000}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for rep in $(seq "$REPS"); do
  for workload in spawn sleepers idle; do
    for arm in trellis context; do
      timeout 120 "$bin" "$arm" "$workload" "$N" | tee -a "$raw"
    done
  done
done
python3 - "$raw" "$REPS" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    fields = dict(re.findall(r'(\w+)=(\S+)', line))
    key = (fields['workload'], fields['arm'])
    rows.setdefault(key, []).append(fields)
for workload in ('spawn', 'sleepers', 'idle'):
    for arm in ('trellis', 'context'):
        if len(rows.get((workload, arm), [])) != int(sys.argv[2]):
            sys.exit(f'run.sh: missing results for {arm} {workload}')
def median(key, name):
    values = [float(f[name]) for f in rows.get(key, []) if name in f]
    return statistics.median(values) if values else None
print()
print('| workload | metric | trellis | context (floor) | trellis / floor |')
print('|---|---|--:|--:|--:|')
for workload, metrics in [('spawn', ['value', 'peak_rss_kb']),
                          ('sleepers', ['value', 'late_mean_us', 'late_max_us', 'peak_rss_kb']),
                          ('idle', ['value'])]:
    for metric in metrics:
        t, c = median((workload, 'trellis'), metric), median((workload, 'context'), metric)
        if t is None or c is None:
            continue
        unit = rows[(workload, 'trellis')][0]['unit'] if metric == 'value' else metric
        ratio = f'{t / c:.2f}x' if c else '-'
        print(f'| {workload} | {unit} | {t:,.1f} | {c:,.1f} | {ratio} |')
PY
