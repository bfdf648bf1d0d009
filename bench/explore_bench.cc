// Exhaustive exploration's throughput (explore.h; bench/README.md):
//   ExhaustiveSchedules       schedules per second, 3 tasks x 3 steps in a plain run: every
//                             one of the 9! / (3! 3! 3!) = 1,680 interleavings, each a run
//   ExhaustiveWorldSchedules  the same body on one host of a World (a World per schedule)
//   ReducedSchedules/k        partial-order reduction (Reduction::kDpor) on 3 tasks x 3 steps
//                             sharing k declared counters (k = 0: each task its own; 1: one
//                             for all), against ExhaustiveSchedulesShared/k without reduction:
//                             schedules_needed is the runs to cover the program, and
//                             schedules_per_second the rate at which they run
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "trellis/sim.h"

namespace {

using namespace std::chrono_literals;
namespace sim = trellis::sim;

void three_tasks() {
  int counter = 0;
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < 3; ++t) {
      n.start_soon([&] {
        for (int i = 0; i < 3; ++i) {
          if (i > 0) trellis::checkpoint();
          ++counter;
        }
      });
    }
  });
  if (counter != 9) throw std::runtime_error("lost a step");
}

constexpr sim::ExhaustiveOptions kEveryInterleaving{.preemption_bound = 6, .schedules_max = 10'000};

void BM_ExhaustiveSchedules(benchmark::State& state) {
  std::size_t schedules = 0;
  for (auto _ : state) {
    const sim::ExhaustiveResult r = sim::explore_exhaustively(three_tasks, kEveryInterleaving);
    if (!r.complete || r.schedules != 1680) state.SkipWithError("not the 1,680 interleavings");
    schedules += r.schedules;
  }
  state.counters["schedules_per_second"] =
      benchmark::Counter(static_cast<double>(schedules), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ExhaustiveSchedules)->Unit(benchmark::kMillisecond);

void BM_ExhaustiveWorldSchedules(benchmark::State& state) {
  sim::Config config;
  config.cpu.step_time_ppm = 0;  // instant steps: the same 1,680 interleavings
  const sim::SimBody body = [](sim::World& world) {
    world.add_host("h", "10.0.0.1").start(three_tasks);
    world.run([] { trellis::sleep(1s); });
  };
  std::size_t schedules = 0;
  for (auto _ : state) {
    const sim::ExhaustiveResult r = sim::explore_simulation(body, config, kEveryInterleaving);
    if (!r.complete || r.failure.has_value()) state.SkipWithError("incomplete or failed");
    schedules += r.schedules;
  }
  state.counters["schedules_per_second"] =
      benchmark::Counter(static_cast<double>(schedules), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ExhaustiveWorldSchedules)->Unit(benchmark::kMillisecond);

// 3 tasks x 3 steps; task t increments counter t % shared (shared = 0: a counter each).
void three_tasks_declared(int shared) {
  sim::Shared<int> counters[3];
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < 3; ++t) {
      sim::Shared<int>& mine = counters[shared == 0 ? t : t % shared];
      n.start_soon([&mine] {
        for (int i = 0; i < 3; ++i) {
          if (i > 0) trellis::checkpoint();
          mine.update([](int& v) { ++v; });
        }
      });
    }
  });
}

void explore_declared(benchmark::State& state, sim::ExhaustiveOptions options) {
  const int shared = static_cast<int>(state.range(0));
  std::size_t schedules = 0;
  std::size_t needed = 0;
  for (auto _ : state) {
    const sim::ExhaustiveResult r =
        sim::explore_exhaustively([shared] { three_tasks_declared(shared); }, options);
    if (!r.complete || r.failure.has_value()) state.SkipWithError("incomplete or failed");
    schedules += r.schedules;
    needed = r.schedules;
  }
  state.counters["schedules_needed"] = static_cast<double>(needed);
  state.counters["schedules_per_second"] =
      benchmark::Counter(static_cast<double>(schedules), benchmark::Counter::kIsRate);
}

void BM_ExhaustiveSchedulesShared(benchmark::State& state) {
  explore_declared(state, kEveryInterleaving);
}
BENCHMARK(BM_ExhaustiveSchedulesShared)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ReducedSchedules(benchmark::State& state) {
  explore_declared(state, {.schedules_max = 10'000, .reduction = sim::Reduction::kDpor});
}
BENCHMARK(BM_ReducedSchedules)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
