// The determinism self-check: the same seed gives the same trace hash, run after run and in
// another process (different ASLR layout, different heap addresses); different seeds explore
// different schedules; a divergence is reported at the first differing event.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "child_process.h"
#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

// A busy workload: a tree of nurseries whose tasks sleep random virtual times, checkpoint,
// cancel each other through timeouts, wait on a Sequencer, carry task-locals, and record
// what they do. Every random number comes from the seed.
std::uint64_t workload_hash(std::uint64_t seed, Trace* trace_out = nullptr) {
  Trace trace;
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  RandomPolicy policy(seed);
  Prng prng(seed ^ 0x5eed);
  TaskLocal<std::uint64_t> depth{0};
  run(
      [&] {
        fakes::Sequencer seq;
        std::function<void(int)> node = [&](int level) {
          depth.set(depth.get() + 1);
          const int children = level < 3 ? static_cast<int>(prng.below(3)) + 1 : 0;
          move_on_after(std::chrono::milliseconds(prng.below(400) + 50), [&] {
            open_nursery([&](Nursery& n) {
              for (int i = 0; i < children; ++i) n.start_soon(node, level + 1);
              for (int step = 0; step < 3; ++step) {
                trace.record("step", depth.get() * 100 + static_cast<std::uint64_t>(step));
                if (prng.below(2) == 0) {
                  sleep(std::chrono::milliseconds(prng.below(100)));
                } else {
                  checkpoint();
                }
              }
            });
          });
        };
        open_nursery([&](Nursery& n) {
          for (std::uint64_t i = 0; i < 3; ++i) {
            n.start_soon([&, i] {
              sleep(std::chrono::milliseconds(prng.below(10)));
              auto s = seq(i);
              trace.record("sequenced", i);
            });
          }
          n.start_soon(node, 0);
        });
      },
      RunOptions{.clock = &clock, .policy = &policy, .instruments = {&trace}});
  if (trace_out != nullptr) *trace_out = trace;
  return trace.hash();
}

constexpr std::uint64_t kSeeds = 1000;

TEST(Determinism, SameSeedSameHash) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    Trace first;
    Trace second;
    workload_hash(seed, &first);
    workload_hash(seed, &second);
    ASSERT_EQ(first.hash(), second.hash()) << "seed " << seed << " diverged:\n"
                                           << divergence_report(first, second);
    ASSERT_GT(first.event_count(), 20u);
  }
}

TEST(Determinism, DifferentSeedsExploreDifferentRuns) {
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) hashes.insert(workload_hash(seed));
  EXPECT_GT(hashes.size(), 190u);
}

// The child half of the cross-process check (child_process.h).
TEST(Determinism, ChildPrintsHashes) {
  const std::uint64_t seeds = testing::child_seed_count("TRELLIS_DETERMINISM_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    testing::print_seed_hash(seed, workload_hash(seed));
  }
}

TEST(Determinism, SameHashInAnotherProcess) {
  constexpr std::uint64_t kChildSeeds = 100;
  const std::map<std::uint64_t, std::uint64_t> theirs = testing::hashes_from_child(
      "Determinism.ChildPrintsHashes", "TRELLIS_DETERMINISM_CHILD_SEEDS", kChildSeeds);
  ASSERT_EQ(theirs.size(), kChildSeeds);
  for (const auto& [seed, hash] : theirs) {
    EXPECT_EQ(workload_hash(seed), hash) << "seed " << seed << " differs across processes";
  }
}

// Two runs that differ in one recorded detail: the report points at that event.
TEST(Determinism, DivergenceReportShowsTheFirstDifferingEvent) {
  auto program = [](Trace& trace, std::uint64_t odd_one) {
    fakes::MockClock clock;
    FifoPolicy fifo;
    run(
        [&] {
          for (std::uint64_t i = 0; i < 10; ++i) {
            trace.record("value", i == 6 ? odd_one : i);
            checkpoint();
          }
        },
        RunOptions{.clock = &clock, .policy = &fifo, .instruments = {&trace}});
  };
  Trace a;
  Trace b;
  program(a, 6);
  program(b, 600);
  EXPECT_NE(a.hash(), b.hash());
  const std::optional<std::uint64_t> at = first_divergence(a, b);
  ASSERT_TRUE(at.has_value());
  const std::string report = divergence_report(a, b);
  EXPECT_NE(report.find("detail=600"), std::string::npos) << report;
  EXPECT_NE(report.find(">> #" + std::to_string(*at)), std::string::npos) << report;
  Trace c;
  program(c, 6);
  EXPECT_EQ(a.hash(), c.hash());
  EXPECT_FALSE(first_divergence(a, c).has_value());
}

}  // namespace
}  // namespace trellis::sim
