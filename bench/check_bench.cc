// The linearizability checker (trellis::check) on public histories (tests/data/histories):
//   CheckEtcdLargest   the largest of Porcupine's etcd Jepsen histories (etcd_070, 90 operations)
//   CheckEtcdSlowest   the one the search works hardest on (etcd_002)
//   CheckEtcdAll       all 102 etcd histories, one after the other (per_history = mean)
//   CheckKv50Ok/Bad    Porcupine's 50-client key-value histories (about 2,000 operations)
// Histories are parsed once, outside the timed loop.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "trellis/check.h"

namespace {

namespace check = trellis::check;

std::string data_path(const std::string& name) {
  return (std::filesystem::path(TRELLIS_SOURCE_DIR) / "tests/data/histories" / name).string();
}

void run_check(benchmark::State& state, const std::vector<check::HistoryFile>& histories) {
  std::vector<std::unique_ptr<check::Model>> models;
  for (const check::HistoryFile& h : histories)
    models.push_back(check::make_model(h.model, h.initial));
  std::size_t steps = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < histories.size(); ++i) {
      const check::CheckResult r = check::check_linearizable(histories[i].operations, *models[i]);
      if (r.verdict != *histories[i].expect) state.SkipWithError("wrong verdict");
      steps += r.steps;
      benchmark::DoNotOptimize(r);
    }
  }
  state.counters["per_history"] =
      benchmark::Counter(static_cast<double>(state.iterations() * histories.size()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["steps"] = static_cast<double>(steps) / static_cast<double>(state.iterations());
}

void CheckOne(benchmark::State& state, const char* name) {
  run_check(state, {check::read_history_file(data_path(name))});
}

void CheckEtcdAll(benchmark::State& state) {
  std::vector<check::HistoryFile> histories;
  for (int i = 0; i <= 102; ++i) {
    if (i == 95) continue;  // Porcupine's test data has no verdict for etcd_095
    char name[32];
    std::snprintf(name, sizeof name, "porcupine-etcd_%03d.txt", i);
    histories.push_back(check::read_history_file(data_path(name)));
  }
  run_check(state, histories);
}

BENCHMARK_CAPTURE(CheckOne, CheckEtcdLargest, "porcupine-etcd_070.txt")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(CheckOne, CheckEtcdSlowest, "porcupine-etcd_002.txt")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(CheckEtcdAll)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(CheckOne, CheckKv50Ok, "porcupine-kv-c50-ok.txt")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(CheckOne, CheckKv50Bad, "porcupine-kv-c50-bad.txt")
    ->Unit(benchmark::kMillisecond);

}  // namespace
