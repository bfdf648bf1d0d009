// Guest mode (issue 21): does the host stay responsive while its guest is busy? An Asio
// io_context hosts a Trellis run of `tasks` tasks that each checkpoint 10 times (a busy
// guest: every callback of the run is one batch); meanwhile the host's own timer is armed
// for every 200 us and records how late each expiry's handler ran.
//
//   build/bench/trellis_bench --benchmark_filter=GuestHostLatency
//
// Counters: host_late_mean_us / host_late_max_us (the host's handler lateness while the
// guest runs), host_ticks (timer handlers that ran during the guest's work), and
// guest_batches_per_s. The same workload under trellis::run (BM_GuestBusyNative) gives the
// guest's own cost of being hosted (compare wall time).
#include <utility>
// (Keep <utility> first: Debian's Boost 1.74 Asio under g++ 12 in C++20 needs it.)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <exception>
#include <functional>

#include "trellis/asio.h"
#include "trellis/trellis.h"

namespace {

using Clock = std::chrono::steady_clock;

void busy_guest(int tasks) {
  trellis::open_nursery([&](trellis::Nursery& nursery) {
    for (int t = 0; t < tasks; ++t) {
      nursery.start_soon([] {
        for (int i = 0; i < 10; ++i) trellis::checkpoint();
      });
    }
  });
}

void BM_GuestHostLatency(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  double late_total_us = 0;
  double late_max_us = 0;
  double ticks = 0;
  for (auto _ : state) {
    boost::asio::io_context io{1};
    boost::asio::steady_timer timer(io);
    bool guest_done = false;
    Clock::time_point due{};
    std::function<void(boost::system::error_code)> tick = [&](boost::system::error_code) {
      const double late = std::chrono::duration<double, std::micro>(Clock::now() - due).count();
      late_total_us += late;
      late_max_us = std::max(late_max_us, late);
      ++ticks;
      if (guest_done) return;
      due = Clock::now() + std::chrono::microseconds(200);
      timer.expires_at(due);
      timer.async_wait(tick);
    };
    due = Clock::now() + std::chrono::microseconds(200);
    timer.expires_at(due);
    timer.async_wait(tick);
    std::exception_ptr outcome;
    trellis::asio_host::start_guest_run(
        io,
        [&] {
          busy_guest(tasks);
          guest_done = true;
        },
        [&](std::exception_ptr error) { outcome = error; });
    io.run();
    if (outcome != nullptr) {
      state.SkipWithError("the guest run failed");
      return;
    }
  }
  state.counters["host_ticks"] = ticks / static_cast<double>(state.iterations());
  state.counters["host_late_mean_us"] = ticks > 0 ? late_total_us / ticks : 0;
  state.counters["host_late_max_us"] = late_max_us;
}
BENCHMARK(BM_GuestHostLatency)
    ->ArgName("tasks")
    ->Arg(1'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_GuestBusyNative(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  for (auto _ : state) trellis::run([&] { busy_guest(tasks); });
}
BENCHMARK(BM_GuestBusyNative)
    ->ArgName("tasks")
    ->Arg(1'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
