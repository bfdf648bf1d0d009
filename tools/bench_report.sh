#!/usr/bin/env bash
# bench_report.sh — build trellis_bench (Release), run it N times (Google Benchmark
# repetitions) and print the median of each figure beside its peer and its target.
#
#   tools/bench_report.sh              # build + 3 repetitions (about 1.5 minutes)
#   REPS=5 tools/bench_report.sh       # more repetitions on a noisy machine
#   NO_BUILD=1 tools/bench_report.sh   # reuse build/bench
#   tools/bench_report.sh --benchmark_filter=Yield   # extra flags go to the binary
#
# Raw results stay in build/bench/bench_results.json. See bench/README.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build/bench}"
reps="${REPS:-3}"
binary="$build/bench/trellis_bench"
out="$build/bench_results.json"

if [[ -z "${NO_BUILD:-}" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target trellis_bench -j2
fi

"$binary" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@"

python3 - "$out" <<'EOF'
import json, sys

data = json.load(open(sys.argv[1]))
scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
median = {}
for b in data["benchmarks"]:
    if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
        continue
    if b.get("error_occurred"):
        print(f"{b['run_name']}: ERROR {b.get('error_message', '')}")
        continue
    median[b["run_name"]] = b

def ns(name):  # CPU time of one iteration, in ns
    b = median.get(name)
    return None if b is None else b["cpu_time"] * scale[b["time_unit"]]

def counter(name, key, factor=1.0):
    b = median.get(name)
    return None if b is None or key not in b else b[key] * factor

def fmt(v, unit):
    return "n/a" if v is None else f"{v:,.1f} {unit}"

def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"

def verdict(v, target):
    return "" if v is None else ("MEETS" if v <= target else "MISSES")

print(f"\nmedian of {data['context'].get('executable', '')} runs "
      f"(CPU time; load average {data['context'].get('load_avg')})\n")

rt = ns("BM_BoostContext_RoundTrip")
cp, pp, ppf = ns("BM_Trellis_Checkpoint"), ns("BM_Trellis_CheckpointPingPong"), \
    ns("BM_Trellis_CheckpointPingPongFifo")
print("Yield (per iteration; target: Trellis <= 2x a Boost.Context round trip)")
print(f"  Boost.Context round trip (2 switches)      {fmt(rt, 'ns')}")
print(f"  Trellis checkpoint, 1 task (no switch)     {fmt(cp, 'ns')}  "
      f"{ratio(cp, rt)}  {verdict(cp / rt if cp and rt else None, 2)}")
print(f"  Trellis ping-pong, 2 tasks (2 checkpoints) {fmt(pp, 'ns')}  "
      f"{ratio(pp, rt)}  {verdict(pp / rt if pp and rt else None, 2)}")
print(f"  Trellis ping-pong, FIFO policy             {fmt(ppf, 'ns')}  {ratio(ppf, rt)}")
print(f"  Boost.Fiber yield, 1 fiber                 {fmt(ns('BM_BoostFiber_Yield'), 'ns')}")
print(f"  Boost.Fiber yield, 2 fibers                "
      f"{fmt(ns('BM_BoostFiber_YieldPingPong'), 'ns')}")

sj = counter("BM_Trellis_SpawnJoin", "per_task", 1e9)
sjf = counter("BM_BoostFiber_SpawnJoin", "per_task", 1e9)
print("\nSpawn + join, 100k tasks (per task; target <= 250 ns)")
print(f"  Trellis      {fmt(sj, 'ns')}  {verdict(sj, 250)}")
print(f"  Boost.Fiber  {fmt(sjf, 'ns')}  (Trellis is {ratio(sjf, sj)} faster)")

print("\nIdle memory, 100k blocked tasks (per task; target <= 16 KiB)")
for name, label in (("BM_Trellis_IdleTaskMemory/iterations:1", "Trellis    "),
                    ("BM_BoostFiber_IdleFiberMemory/iterations:1", "Boost.Fiber")):
    kib = counter(name, "KiB_per_idle_task")
    print(f"  {label}  {fmt(kib, 'KiB')} resident  {verdict(kib, 16)}"
          f"  (peak incl. wake-up {fmt(counter(name, 'KiB_per_task_peak_incl_wakeup'), 'KiB')},"
          f" heap {fmt(counter(name, 'heap_B_per_task'), 'B')},"
          f" page tables {fmt(counter(name, 'pagetable_B_per_task'), 'B')},"
          f" new mappings {counter(name, 'new_mappings') or 0:.0f})")

print("\nTimers, 100k random deadlines (per timer; target <= 300 ns)")
asio = counter("BM_Asio_SteadyTimers", "per_timer", 1e9)
for name, label in (("BM_Trellis_Sleepers/stack_kib:0", "Trellis, 1 sleep/task        "),
                    ("BM_Trellis_Sleepers/stack_kib:16", "Trellis, 1 sleep/task, 16 KiB"),
                    ("BM_Trellis_SleepersTenEach", "Trellis, 10 sleeps/task      ")):
    v = counter(name, "per_timer", 1e9)
    print(f"  {label}  {fmt(v, 'ns')}  {verdict(v, 300)}  ({ratio(v, asio)} Asio)")
print(f"  Asio steady_timer (all due)    {fmt(asio, 'ns')}")

print("\nTCP echo on loopback, 64-byte messages (round trips per second of wall time; "
      "target: Trellis >= 0.95x Asio)")
for connections in (1, 100):
    trellis = f"BM_Trellis_TcpEcho/connections:{connections}/real_time"
    peer = f"BM_Asio_TcpEcho/connections:{connections}/real_time"
    t, a = counter(trellis, "round_trips", 1e-3), counter(peer, "round_trips", 1e-3)
    tc = counter(trellis, "server_cpu_per_round_trip", 1e6)
    ac = counter(peer, "server_cpu_per_round_trip", 1e6)
    met = "" if t is None or a is None else ("MEETS" if t >= 0.95 * a else "MISSES")
    print(f"  {connections:>3} connection(s): Trellis {fmt(t, 'k/s')}, Asio {fmt(a, 'k/s')}: "
          f"{ratio(t, a)}  {met}  (server CPU per round trip: Trellis {fmt(tc, 'us')}, "
          f"Asio {fmt(ac, 'us')})")

print("\nIdle TCP connections held by the server (resident memory growth per connection)")
for name, label in (("BM_Trellis_TcpIdleConnections/iterations:1", "Trellis"),
                    ("BM_Asio_TcpIdleConnections/iterations:1", "Asio   ")):
    print(f"  {label}  {fmt(counter(name, 'KiB_per_connection'), 'KiB')} resident"
          f"  (heap {fmt(counter(name, 'heap_B_per_connection'), 'B')},"
          f" {counter(name, 'connections') or 0:.0f} connections)")
EOF
