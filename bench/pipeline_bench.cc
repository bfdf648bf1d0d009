// Pipeline overhead: items per second through a 5-stage Map pipeline (trellis::pipeline)
// against the same 5 stages hand-written as Trellis tasks and rendezvous memory channels in
// the same run, and against Boost.Fiber fibers with unbuffered channels (issue 20; goal:
// pipeline <= 1.2x the hand-written time per item).
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>
#include <cstdint>
#include <utility>
#include <vector>

#include "trellis/pipeline.h"
#include "trellis/trellis.h"

namespace {

constexpr int kStages = 5;
constexpr std::int64_t kItems = 20'000;  // per benchmark iteration

std::int64_t step(std::int64_t v) {
  return v + 1;
}

// The source: kItems integers on a rendezvous channel.
trellis::MemoryReceiveChannel<std::int64_t> source(trellis::Nursery& nursery) {
  auto [tx, rx] = trellis::open_memory_channel<std::int64_t>(0);
  nursery.start_soon([tx = std::move(tx)]() mutable {
    for (std::int64_t i = 0; i < kItems; ++i) tx.send(i);
  });
  return std::move(rx);
}

void BM_Pipeline_Map5(benchmark::State& state) {
  namespace pl = trellis::pipeline;
  for (auto _ : state) {
    std::int64_t sum = 0;
    trellis::run([&] {
      trellis::open_nursery([&](trellis::Nursery& nursery) {
        pl::Pipeline p = pl::create(nursery, pl::Chain(source(nursery)), pl::Map(step),
                                    pl::Map(step), pl::Map(step), pl::Map(step), pl::Map(step));
        for (std::int64_t v : p.tap<std::int64_t>()) sum += v;
      });
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_Pipeline_Map5)->Unit(benchmark::kMillisecond);

// The same stages by hand: one task per Map, rendezvous channels between them, the reader
// reading the last one directly (the pipeline has one more hop: its pump to the tap).
void BM_HandWritten_Map5(benchmark::State& state) {
  for (auto _ : state) {
    std::int64_t sum = 0;
    trellis::run([&] {
      trellis::open_nursery([&](trellis::Nursery& nursery) {
        trellis::MemoryReceiveChannel<std::int64_t> in = source(nursery);
        for (int s = 0; s < kStages; ++s) {
          auto [tx, rx] = trellis::open_memory_channel<std::int64_t>(0);
          nursery.start_soon([in = std::move(in), tx = std::move(tx)]() mutable {
            for (std::int64_t v : in) tx.send(step(v));
          });
          in = std::move(rx);
        }
        for (std::int64_t v : in) sum += v;
      });
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_HandWritten_Map5)->Unit(benchmark::kMillisecond);

// Boost.Fiber: one fiber per stage, unbuffered channels, joined at the end.
void BM_BoostFiber_Map5(benchmark::State& state) {
  using Channel = boost::fibers::unbuffered_channel<std::int64_t>;
  for (auto _ : state) {
    std::vector<std::unique_ptr<Channel>> channels;
    for (int s = 0; s <= kStages; ++s) channels.push_back(std::make_unique<Channel>());
    std::vector<boost::fibers::fiber> fibers;
    fibers.emplace_back([&] {
      for (std::int64_t i = 0; i < kItems; ++i) channels[0]->push(i);
      channels[0]->close();
    });
    for (int s = 0; s < kStages; ++s) {
      fibers.emplace_back([&, s] {
        for (std::int64_t v : *channels[static_cast<std::size_t>(s)]) {
          channels[static_cast<std::size_t>(s) + 1]->push(step(v));
        }
        channels[static_cast<std::size_t>(s) + 1]->close();
      });
    }
    std::int64_t sum = 0;
    for (std::int64_t v : *channels[kStages]) sum += v;
    for (boost::fibers::fiber& f : fibers) f.join();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_BoostFiber_Map5)->Unit(benchmark::kMillisecond);

}  // namespace
