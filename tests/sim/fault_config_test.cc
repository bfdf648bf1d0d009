// Swarm testing (each seed picks its fault kinds) and cancellation as a fault (the simulator
// cancels user cancel scopes at seeded steps): a cleanup bug that no deadline ever reaches is
// found, a correct program is untouched, hosts' own scopes are never targets, and all of it
// is deterministic.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

// Moves 20 units from a to b, one per transfer, each under a deadline that never fires
// on its own. With rollback, a cancelled transfer puts its unit back.
SimBody transfers(bool rollback) {
  return [rollback](World& world) {
    int a = 20;
    int b = 0;
    bool done = false;
    Host& host = world.add_host("bank", "10.0.0.1");
    host.start([&] {
      for (int i = 0; i < 20; ++i) {
        move_on_after(1h, [&] {
          --a;
          bool moved = false;
          struct Undo {
            bool enabled;
            bool& moved;
            int& a;
            ~Undo() {
              if (enabled && !moved) ++a;
            }
          } undo{rollback, moved, a};
          sleep(1ms);
          ++b;
          moved = true;
        });
      }
      done = true;
    });
    world.run([&] {
      while (!done) sleep(10ms);
    });
    if (a + b != 20) throw std::runtime_error("total not conserved: " + std::to_string(a + b));
  };
}

Config with_cancel_faults(std::uint64_t seed) {
  Config config{.seed = seed};
  config.cancel_faults.enable_ppm = 1'000'000;
  config.cancel_faults.step_window = 60;
  return config;
}

TEST(CancelFaults, FindACleanupBugThatNoDeadlineReaches) {
  int failed_without = 0;
  int failed_with = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    failed_without += run_simulation(transfers(false), Config{.seed = seed}).failed ? 1 : 0;
    const RunResult r = run_simulation(transfers(false), with_cancel_faults(seed));
    if (r.failed) {
      ++failed_with;
      EXPECT_NE(r.failure.find("total not conserved"), std::string::npos) << r.failure;
    }
  }
  EXPECT_EQ(failed_without, 0);
  EXPECT_GT(failed_with, 0);
}

TEST(CancelFaults, LeaveACorrectProgramCorrect) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const RunResult r = run_simulation(transfers(true), with_cancel_faults(seed));
    EXPECT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
  }
}

TEST(CancelFaults, NeverCancelAHostsOwnScopesOrTheDriver) {
  // No scope with a deadline (only nurseries): nothing may be cancelled, all runs to its end.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    World world(with_cancel_faults(seed));
    int steps = 0;
    Host& host = world.add_host("h", "10.0.0.1");
    host.start([&] {
      open_nursery([&](Nursery& n) {
        for (int t = 0; t < 3; ++t) {
          n.start_soon([&] {
            for (int i = 0; i < 20; ++i) {
              sleep(1ms);
              ++steps;
            }
          });
        }
      });
    });
    world.run([&] { move_on_after(10s, [] { sleep(1s); }); });
    EXPECT_EQ(steps, 60) << "seed " << seed;
    EXPECT_EQ(world.cancel_faults_injected(), 0u);
  }
}

TEST(CancelFaults, AreDeterministicAndOnlyInSeedsThatEnableThem) {
  Config half{.seed = 0};
  half.cancel_faults.enable_ppm = 500'000;
  half.cancel_faults.step_window = 60;
  int seeds_with_faults = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    half.seed = seed;
    const RunResult first = run_simulation(transfers(true), half);
    const RunResult second = run_simulation(transfers(true), half);
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    World world(half);
    bool done = false;
    world.add_host("h", "10.0.0.1").start([&] {
      for (int i = 0; i < 30; ++i) move_on_after(1h, [] { sleep(1ms); });
      done = true;
    });
    world.run([&] {
      while (!done) sleep(10ms);
    });
    if (world.cancel_faults_injected() > 0) ++seeds_with_faults;
    EXPECT_LE(world.cancel_faults_injected(), half.cancel_faults.faults_max);
  }
  EXPECT_GT(seeds_with_faults, 5);
  EXPECT_LT(seeds_with_faults, 35);
}

TEST(CancelFaults, BadConfigIsAClearError) {
  Config config;
  config.cancel_faults.enable_ppm = 1;
  config.cancel_faults.faults_max = 0;
  EXPECT_THROW(World{config}, std::invalid_argument);
}

TEST(Swarm, EachSeedPicksSomeFaultKindsAndTheWorldAppliesThem) {
  constexpr auto kKinds = static_cast<std::uint32_t>(FaultKind::kCount);
  std::vector<int> on(kKinds, 0);
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    Config config{.seed = seed};
    config.swarm = true;
    config.disk.eio_ppm = 1000;
    config.disk.torn_write_ppm = 1000;
    config.network.datagram_loss_ppm = 1000;
    config.cancel_faults.enable_ppm = 1000;
    World world(config);
    EXPECT_NE(world.swarm_mask(), 0u);
    for (std::uint32_t k = 0; k < kKinds; ++k) {
      if (world.fault_enabled(static_cast<FaultKind>(k))) ++on[k];
    }
    EXPECT_EQ(world.config().disk.eio_ppm != 0, world.fault_enabled(FaultKind::kDiskError));
    EXPECT_EQ(world.config().disk.torn_write_ppm != 0, world.fault_enabled(FaultKind::kTornWrite));
    EXPECT_EQ(world.config().network.datagram_loss_ppm != 0,
              world.fault_enabled(FaultKind::kDatagramFaults));
    EXPECT_EQ(world.config().buggify_enable_ppm != 0, world.fault_enabled(FaultKind::kBuggify));
    EXPECT_EQ(world.config().cancel_faults.enable_ppm != 0,
              world.fault_enabled(FaultKind::kCancellation));
    EXPECT_EQ(World(config).swarm_mask(), world.swarm_mask());  // a function of the seed
  }
  for (std::uint32_t k = 0; k < kKinds; ++k) {
    EXPECT_GT(on[k], 60) << fault_kind_name(static_cast<FaultKind>(k));
    EXPECT_LT(on[k], 140) << fault_kind_name(static_cast<FaultKind>(k));
  }
  World plain(Config{.seed = 1});
  EXPECT_EQ(plain.swarm_mask(), (1u << kKinds) - 1);
}

}  // namespace
}  // namespace trellis::sim
