// Pipelines inside a sim::World: the same seed gives the same run (trace hash) twice, and the
// time-based sections and ThreadSection (a simulated thread) run in virtual time.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "../sim/child_process.h"
#include "trellis/pipeline.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  std::vector<std::string> items;
  std::uint64_t hash = 0;
  Duration elapsed{};
};

// A host runs a pipeline fed by two sources with seeded random gaps: Merge, RateLimit per key,
// a simulated thread, Group by time, Delay; two taps read it.
Outcome pipeline_run(std::uint64_t seed) {
  sim::World world(sim::Config{.seed = seed});
  sim::Host& host = world.add_host("worker", "10.0.0.1");
  Outcome outcome;
  bool done = false;
  host.start([&] {
    const Time start = current_time();
    open_nursery([&](Nursery& nursery) {
      std::vector<MemoryReceiveChannel<int>> sources;
      for (int s = 0; s < 2; ++s) {
        auto [tx, rx] = open_memory_channel<int>(0);
        nursery.start_soon([seed, s, tx = std::move(tx)]() mutable {
          Prng prng(seed * 31 + static_cast<std::uint64_t>(s));
          for (int i = 0; i < 40; ++i) {
            tx.send(s * 1000 + i);
            sleep(std::chrono::milliseconds(prng.below(300)));
          }
        });
        sources.push_back(std::move(rx));
      }
      Pipeline p = create(nursery, Merge(std::move(sources)),
                          RateLimit(100ms, [](const int& v) { return v / 1000; }),
                          ThreadSection([](int v) { return std::to_string(v); }), Group(5, 1s),
                          Delay(250ms), Map([](std::vector<std::string> g) {
                            std::string joined;
                            for (const std::string& s : g) joined += s + ",";
                            return joined;
                          }));
      MemoryReceiveChannel<std::string> a = p.tap<std::string>();
      MemoryReceiveChannel<std::string> b = p.tap<std::string>({.max_buffer_size = 3});
      nursery.start_soon([b = std::move(b)]() mutable {
        for (std::string& s : b) (void)s;
      });
      for (std::string& s : a) {
        world.trace().record(s);
        outcome.items.push_back(s);
      }
    });
    outcome.elapsed = current_time() - start;
    done = true;
  });
  world.run([&] {
    while (!done) sleep(1s);
  });
  outcome.hash = world.trace().hash();
  return outcome;
}

TEST(PipelineSim, SameSeedSameTraceHash) {
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const Outcome first = pipeline_run(seed);
    const Outcome second = pipeline_run(seed);
    ASSERT_FALSE(first.items.empty());
    EXPECT_EQ(first.hash, second.hash) << "seed " << seed;
    EXPECT_EQ(first.items, second.items) << "seed " << seed;
    EXPECT_EQ(first.elapsed, second.elapsed) << "seed " << seed;
    EXPECT_GT(first.elapsed, 1s);  // virtual time: seconds of it, no real waiting
    hashes.insert(first.hash);
  }
  EXPECT_GT(hashes.size(), 1u);  // different seeds, different schedules
}

// The same seeds give the same hashes in another process (another address-space layout):
// nothing in a pipeline's run depends on an address (tests/sim/child_process.h).
TEST(PipelineSim, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_PIPELINE_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, pipeline_run(seed).hash);
  }
}

TEST(PipelineSim, SameHashInAnotherProcess) {
  const auto theirs = sim::testing::hashes_from_child("PipelineSim.ChildPrintsHashes",
                                                      "TRELLIS_PIPELINE_CHILD_SEEDS", 4);
  ASSERT_EQ(theirs.size(), 4u);
  for (const auto& [seed, hash] : theirs) EXPECT_EQ(pipeline_run(seed).hash, hash) << seed;
}

}  // namespace
}  // namespace trellis::pipeline
