// Bounded exhaustive exploration (explore.h): exact schedule counts on programs whose
// interleavings are known, planted races found in fewer runs than random seeds need, the
// fixed programs proved correct for the bound, failures that replay, and policies named in
// one string (policy_spec.h), PCT's learned steps estimate among them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "child_process.h"
#include "trellis/sim.h"
#include "trellis/sim/gtest.h"

namespace {

using namespace std::chrono_literals;
using trellis::sim::Config;
using trellis::sim::ExhaustiveOptions;
using trellis::sim::ExhaustiveResult;
using trellis::sim::explore_exhaustively;
using trellis::sim::World;

std::uint64_t binomial(std::uint64_t n, std::uint64_t k) {
  std::uint64_t out = 1;
  for (std::uint64_t i = 1; i <= k; ++i) out = out * (n - k + i) / i;
  return out;
}

// Two tasks of `steps` steps each (steps - 1 checkpoints between), each step logging its
// task: the log is the interleaving.
void two_tasks(int steps, std::string* log) {
  log->clear();
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (char name : {'a', 'b'}) {
      n.start_soon([=] {
        for (int i = 0; i < steps; ++i) {
          if (i > 0) trellis::checkpoint();
          log->push_back(name);
        }
      });
    }
  });
}

TEST(Exhaustive, ExploresEveryInterleavingExactlyOnce) {
  for (int k = 1; k <= 5; ++k) {
    std::string log;
    std::set<std::string> seen;
    const ExhaustiveResult r = explore_exhaustively(
        [&] {
          two_tasks(k, &log);
          seen.insert(log);
        },
        {.preemption_bound = 2 * k, .schedules_max = 10'000});
    EXPECT_TRUE(r.complete) << k;
    EXPECT_FALSE(r.failure.has_value());
    // C(2k, k) orders of two sequences of k steps, each run once, each a different order.
    EXPECT_EQ(r.schedules, binomial(2 * k, k)) << k;
    EXPECT_EQ(seen.size(), r.schedules) << k;
  }
}

TEST(Exhaustive, PreemptionBoundCountsAreExact) {
  // m steps per task; a schedule of r blocks has r - 2 preemptions (the switch after a
  // task's last step is free), so with p preemptions there are 2 * C(m-1, ceil(r/2)-1) *
  // C(m-1, floor(r/2)-1) schedules, r = p + 2: 2, then 2(m-1), then 2(m-1)^2.
  const int m = 5;
  std::string log;
  const std::vector<std::size_t> expected = {2, 2 * (m - 1), 2 * (m - 1) * (m - 1)};
  for (int bound = 0; bound <= 2; ++bound) {
    const ExhaustiveResult r =
        explore_exhaustively([&] { two_tasks(m, &log); }, {.preemption_bound = bound});
    ASSERT_TRUE(r.complete);
    ASSERT_EQ(r.schedules_by_preemptions.size(), static_cast<std::size_t>(bound) + 1);
    std::size_t total = 0;
    for (int p = 0; p <= bound; ++p) {
      EXPECT_EQ(r.schedules_by_preemptions[p], expected[p]) << "bound " << bound << " p " << p;
      total += expected[p];
    }
    EXPECT_EQ(r.schedules, total);
    EXPECT_EQ(r.bound_covered, bound);
  }
}

TEST(Exhaustive, BudgetCutsAndSaysSo) {
  std::string log;
  const ExhaustiveOptions options{.preemption_bound = 8, .schedules_max = 10};
  const ExhaustiveResult r = explore_exhaustively([&] { two_tasks(4, &log); }, options);
  EXPECT_EQ(r.schedules, 10u);
  EXPECT_FALSE(r.complete);
  EXPECT_NE(describe(r, options).find("cut by the budget of 10 schedules"), std::string::npos)
      << describe(r, options);
  EXPECT_THROW(explore_exhaustively([] {}, {.preemption_bound = -1}), std::invalid_argument);
  EXPECT_THROW(explore_exhaustively([] {}, {.schedules_max = 0}), std::invalid_argument);
}

// A check-then-act race deep in one task: task a reads a flag after 60 checkpoints and acts
// on it one step later; b changes the flag after 15 checkpoints, so b must be exactly 45
// steps behind a; a third task adds noise. A random walk over the steps rarely is.
void deep_race(bool fixed) {
  int flag = 0;
  bool broken = false;
  trellis::Lock lock;
  trellis::open_nursery([&](trellis::Nursery& n) {
    n.start_soon([&] {
      for (int i = 0; i < 60; ++i) trellis::checkpoint();
      if (fixed) lock.acquire();
      const int seen = flag;
      trellis::checkpoint();
      if (seen != flag) broken = true;
      if (fixed) lock.release();
    });
    n.start_soon([&] {
      for (int i = 0; i < 15; ++i) trellis::checkpoint();
      if (fixed) lock.acquire();
      ++flag;
      if (fixed) lock.release();
    });
    n.start_soon([&] {
      for (int i = 0; i < 6; ++i) trellis::checkpoint();
    });
  });
  if (broken) throw std::runtime_error("flag changed between check and act");
}

TEST(Exhaustive, FindsADeepRaceInFewerRunsThanRandom) {
  // Random: the first failing seed of RandomPolicy(seed), seeds 1, 2, ...
  std::uint64_t random_runs = 0;
  bool random_found = false;
  for (std::uint64_t seed = 1; seed <= 5000 && !random_found; ++seed) {
    trellis::sim::RandomPolicy random(seed);
    ++random_runs;
    bool failed = false;
    try {
      trellis::sim::run_unit_with([] { deep_race(false); }, random);
    } catch (const std::runtime_error&) {
      failed = true;
    }
    random_found = failed;
  }
  const ExhaustiveResult r =
      explore_exhaustively([] { deep_race(false); }, {.preemption_bound = 2});
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure_preemptions, 1);
  std::printf("deep race: exhaustive %zu schedules; random %s after %llu seeds\n", r.schedules,
              random_found ? "found it" : "had not found it",
              static_cast<unsigned long long>(random_runs));
  EXPECT_LT(r.schedules, random_runs);
  // The failure replays from its decisions alone.
  trellis::sim::DecisionPolicy replay(r.failure->decisions);
  EXPECT_THROW(trellis::sim::run_unit_with([] { deep_race(false); }, replay), std::runtime_error);
  // The fixed program is correct for the bound: every schedule ran, none failed.
  const ExhaustiveResult fixed =
      explore_exhaustively([] { deep_race(true); }, {.preemption_bound = 1});
  EXPECT_TRUE(fixed.complete);
  EXPECT_FALSE(fixed.failure.has_value());
  std::printf("deep race fixed: %zu schedules, complete for bound 1\n", fixed.schedules);
}

// The README's lost update (read, checkpoint, write) in two tasks.
void lost_update(bool fixed) {
  int counter = 0;
  trellis::Lock lock;
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < 2; ++t) {
      n.start_soon([&] {
        if (fixed) lock.acquire();
        const int read = counter;
        trellis::checkpoint();
        counter = read + 1;
        if (fixed) lock.release();
      });
    }
  });
  if (counter != 2) throw std::runtime_error("lost update");
}

TEST(Exhaustive, LostUpdateFoundAndFixedVersionProved) {
  const ExhaustiveResult r = explore_exhaustively([] { lost_update(false); });
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->failure, "lost update");
  std::printf("lost update: found at schedule %zu\n", r.schedules);
  const ExhaustiveResult fixed =
      explore_exhaustively([] { lost_update(true); }, {.preemption_bound = 4});
  EXPECT_TRUE(fixed.complete);
  EXPECT_FALSE(fixed.failure.has_value());
  std::printf("lost update fixed: %zu schedules, complete for bound 4\n", fixed.schedules);
}

// The same race across a World's hosts: explored for one seed, failure replayed from its
// replay config.
void world_lost_update(World& world) {
  trellis::sim::Host& h = world.add_host("h", "10.0.0.1");
  int counter = 0;
  h.start([&] {
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int t = 0; t < 2; ++t) {
        n.start_soon([&] {
          const int read = counter;
          trellis::checkpoint();
          counter = read + 1;
        });
      }
    });
  });
  world.run([&] { trellis::sleep(1s); });
  if (counter != 2) throw std::runtime_error("lost update");
}

TEST(Exhaustive, ExploresAWorldForOneSeedAndReplays) {
  Config config;
  config.seed = 3;
  const ExhaustiveResult r = trellis::sim::explore_simulation(world_lost_update, config);
  ASSERT_TRUE(r.failure.has_value());
  const Config replay =
      trellis::sim::replay_config(r.failure->replay("Exhaustive.World"), Config{});
  const trellis::sim::RunResult again = trellis::sim::run_simulation(world_lost_update, replay);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, r.failure->trace_hash);
}

TEST(PolicySpec, ParsesEveryFormAndRejectsOthersClearly) {
  using trellis::sim::parse_policy_spec;
  using trellis::sim::PolicyKind;
  EXPECT_EQ(parse_policy_spec("fifo").kind, PolicyKind::kFifo);
  EXPECT_EQ(parse_policy_spec("random").kind, PolicyKind::kRandom);
  const auto pct = parse_policy_spec("pct:depth=3,steps=200");
  EXPECT_EQ(pct.kind, PolicyKind::kPct);
  EXPECT_EQ(pct.pct_depth, 3);
  EXPECT_EQ(pct.pct_steps_estimate, 200u);
  EXPECT_EQ(parse_policy_spec("pct").pct_steps_estimate, 0u);
  const auto ex = parse_policy_spec("exhaustive:preemptions=2,budget=500");
  EXPECT_TRUE(ex.exhaustive);
  EXPECT_EQ(ex.exhaustive_options.preemption_bound, 2);
  EXPECT_EQ(ex.exhaustive_options.schedules_max, 500u);
  EXPECT_EQ(ex.name(), "exhaustive:preemptions=2,budget=500");
  for (const char* bad : {"pc", "pct:depth=0", "pct:depth=x", "pct:width=2", "random:x=1",
                          "exhaustive:budget=0", "exhaustive:", "pct:depth=2,depth=3"}) {
    try {
      parse_policy_spec(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("accepted: fifo | random | pct[:depth=D,steps=S] | "
                                           "exhaustive[:preemptions=P,budget=N,reduction="),
                std::string::npos)
          << e.what();
    }
  }
}

// A short run (about 40 steps) whose race needs one change point inside the first task's
// run: PCT with the old default of 10,000 steps has no change point there on any of these
// seeds; with the estimate learned from the run's length it finds it.
void short_race() {
  int counter = 0;
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < 2; ++t) {
      n.start_soon([&] {
        for (int i = 0; i < 10; ++i) {
          const int read = counter;
          trellis::checkpoint();
          counter = read + 1;
        }
      });
    }
  });
  if (counter != 20) throw std::runtime_error("lost update");
}

int pct_failures(std::uint64_t steps_estimate, std::uint64_t seeds) {
  int failures = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    trellis::sim::PctPolicy pct(seed, {.depth = 3, .steps_estimate = steps_estimate});
    try {
      trellis::sim::run_unit_with(short_race, pct);
    } catch (const std::runtime_error&) {
      ++failures;
    }
  }
  return failures;
}

TEST(Pct, LearnedStepsEstimateFindsAShortRunRace) {
  const std::uint64_t learned = trellis::sim::learn_pct_steps(short_race);
  EXPECT_GE(learned, 20u);
  EXPECT_LE(learned, 60u);
  const int before = pct_failures(10'000, 20);
  const int after = pct_failures(learned, 20);
  std::printf("short race over 20 seeds: %d failures with steps 10000, %d with learned %llu\n",
              before, after, static_cast<unsigned long long>(learned));
  EXPECT_EQ(before, 0);
  EXPECT_GE(after, 5);
}

// The environment: TRELLIS_POLICY=exhaustive on the macro canaries (children of this test).
TRELLIS_ASYNC_TEST(ExhaustiveCanary, AsyncLostUpdate) {
  if (std::getenv("TRELLIS_CANARY") == nullptr) return;
  lost_update(std::getenv("TRELLIS_CANARY_FIXED") != nullptr);
}

TRELLIS_SIM_TEST(ExhaustiveCanary, SimLostUpdate) {
  if (std::getenv("TRELLIS_CANARY") == nullptr) GTEST_SKIP() << "runs as a child";
  world_lost_update(world);
}

TEST(Exhaustive, EnvironmentSelectsItAndTheFailureReplays) {
  using trellis::sim::testing::run_child;
  int status = 0;
  const std::string dir = ::testing::TempDir();
  for (const char* test : {"ExhaustiveCanary.AsyncLostUpdate", "ExhaustiveCanary.SimLostUpdate"}) {
    const std::string out = run_child(
        "TRELLIS_CANARY=1 TRELLIS_POLICY=exhaustive:preemptions=2,budget=1000 TRELLIS_REPLAY_DIR=" +
            dir,
        test, &status);
    ASSERT_NE(status, 0) << out;
    EXPECT_NE(out.find("exhaustive exploration failed"), std::string::npos) << out;
    const std::size_t at = out.find("TRELLIS_REPLAY=");
    ASSERT_NE(at, std::string::npos) << out;
    const std::string file = out.substr(at + 15, out.find(' ', at) - (at + 15));
    const std::string replay = run_child("TRELLIS_CANARY=1 TRELLIS_REPLAY=" + file, test, &status);
    EXPECT_NE(status, 0) << replay;
    EXPECT_NE(replay.find("replayed failure"), std::string::npos) << replay;
  }
  const std::string fixed = run_child(
      "TRELLIS_CANARY=1 TRELLIS_CANARY_FIXED=1 TRELLIS_POLICY=exhaustive:preemptions=3,budget=1000",
      "ExhaustiveCanary.AsyncLostUpdate", &status);
  EXPECT_EQ(status, 0) << fixed;
  EXPECT_NE(fixed.find("complete for preemption bound 3"), std::string::npos) << fixed;
  const std::string bad = run_child("TRELLIS_CANARY=1 TRELLIS_POLICY=exhaustve",
                                    "ExhaustiveCanary.AsyncLostUpdate", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(bad.find("accepted: fifo | random"), std::string::npos) << bad;
}

}  // namespace
