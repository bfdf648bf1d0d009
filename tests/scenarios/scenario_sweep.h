// Helpers shared by the scenario tests: one seed of a scenario, the search for a planted
// bug's first failing seed, the check that a failure reproduces (from its seed and from its
// replay file), and a clean sweep.
//
//   const std::optional<sim::RunResult> failing = first_failing_seed(kv, bug);
//   ASSERT_TRUE(failing) << "no failing seed in 1..1000";
//   EXPECT_NE(failing->failure.find("is not linearizable"), std::string::npos);
//   expect_failure_reproduces(kv, bug, *failing);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "trellis/scenarios/scenario.h"
#include "trellis/sim.h"

namespace trellis::scenarios {

// Seed `seed` of the scenario, as `trellis run` runs it.
inline sim::RunResult run_seed(const Scenario& scenario, const Options& options,
                               std::uint64_t seed) {
  return run_scenario(scenario, options, scenario_config(scenario, options, seed));
}

// The fault plan seed `seed` of the scenario runs with: its configure's (nothing is run).
inline std::vector<sim::PlannedFault> planned_faults(const Scenario& scenario,
                                                     const Options& options, std::uint64_t seed) {
  return scenario_config(scenario, options, seed).fault_plan.faults;
}

// How many of `faults` are of `kind`.
inline std::size_t count_planned(const std::vector<sim::PlannedFault>& faults,
                                 sim::PlannedFault::Kind kind) {
  return static_cast<std::size_t>(std::count_if(
      faults.begin(), faults.end(), [kind](const sim::PlannedFault& f) { return f.kind == kind; }));
}

// The run of the first of seeds 1..seeds_max that fails (printed), or nullopt.
inline std::optional<sim::RunResult> first_failing_seed(const Scenario& scenario,
                                                        const Options& options,
                                                        std::uint64_t seeds_max = 1000) {
  for (std::uint64_t seed = 1; seed <= seeds_max; ++seed) {
    sim::RunResult r = run_seed(scenario, options, seed);
    if (!r.failed) continue;
    std::printf("%s: first failing seed %llu: %s\n", scenario.name.c_str(),
                static_cast<unsigned long long>(seed), r.failure.c_str());
    return r;
  }
  return std::nullopt;
}

// The failing run reproduces event for event: rerun from its seed, and from its replay file
// (seed, options and recorded decisions, as `trellis replay` reads them), it fails with the
// same message and the same trace hash.
inline void expect_failure_reproduces(const Scenario& scenario, const Options& options,
                                      const sim::RunResult& failing) {
  ASSERT_TRUE(failing.failed);
  const std::uint64_t seed = failing.config.seed;
  const sim::RunResult again = run_seed(scenario, options, seed);
  EXPECT_TRUE(again.failed) << "seed " << seed << " rerun";
  EXPECT_EQ(again.failure, failing.failure) << "seed " << seed << " rerun";
  EXPECT_EQ(again.trace_hash, failing.trace_hash) << "seed " << seed << " rerun";
  const sim::ReplayFile replay = failing.replay(scenario.name, options);
  const sim::RunResult replayed = run_scenario(
      scenario, replay.options,
      sim::replay_config(replay, scenario_config(scenario, replay.options, replay.seed)));
  EXPECT_TRUE(replayed.failed) << "seed " << seed << " replayed";
  EXPECT_EQ(replayed.failure, failing.failure) << "seed " << seed << " replayed";
  EXPECT_EQ(replayed.trace_hash, failing.trace_hash) << "seed " << seed << " replayed";
}

// Seeds first..first + count - 1 all pass; stops at the first that fails.
inline void expect_seeds_pass(const Scenario& scenario, const Options& options, std::uint64_t first,
                              std::uint64_t count) {
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    const sim::RunResult r = run_seed(scenario, options, seed);
    ASSERT_FALSE(r.failed) << scenario.name << " seed " << seed << ": " << r.failure;
  }
}

}  // namespace trellis::scenarios
