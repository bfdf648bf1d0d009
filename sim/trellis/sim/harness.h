// trellis/sim/harness.h — running a simulated program for many seeds, shrinking a failure to
// its smallest schedule, replaying it, and checking determinism. The GoogleTest macro
// (sim/gtest.h) and the `trellis` command-line tool are built on these.
//
//   trellis::sim::SimBody body = [](trellis::sim::World& world) { ...; world.run(driver); };
//   trellis::sim::RunResult r = trellis::sim::run_simulation(body, {.seed = 7});
//   if (r.failed) {
//     auto minimal = trellis::sim::shrink(body, r);   // fewer, smaller decisions
//     trellis::sim::write_replay_file("fail.replay", minimal.replay("my_test"));
//   }
//
// A run fails when the body throws (an invariant check, a DeadlockError, a host's error) or
// when the optional failure probe reports a failure (GoogleTest assertions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/sim/replay_file.h"
#include "trellis/sim/world.h"

namespace trellis::sim {

// Sets up hosts in the world and runs it (world.run(driver)); throws to fail.
using SimBody = std::function<void(World& world)>;
// Called after each run: a failure message if the run failed in a way that threw nothing.
using FailureProbe = std::function<std::optional<std::string>()>;

struct RunResult {
  // Exactly what ran: seed, policy, decisions, and the faults the world injected
  // (config.fault_plan: a scenario's nemesis draws its plan into the config up front).
  Config config;
  bool failed = false;
  std::string failure;
  std::uint64_t trace_hash = 0;
  std::uint64_t trace_events = 0;
  std::vector<std::uint32_t> decisions;  // every schedule choice made
  Duration virtual_time{};
  std::vector<std::string> host_names;  // the world's hosts, in order (for fault summaries)

  // The injected faults as one paragraph ("crash replica1 at 1.2s, restart at 1.9s; ...").
  std::string fault_summary() const { return summarize(config.fault_plan, host_names); }

  // A replay file that reruns this run: the same seed with its recorded decisions.
  ReplayFile replay(const std::string& scenario,
                    std::map<std::string, std::string> options = {}) const;
};

// One run of body in a fresh World built from config. keep_trace: receives the run's trace.
RunResult run_simulation(const SimBody& body, const Config& config, const FailureProbe& probe = {},
                         Trace* keep_trace = nullptr);

// Decisions that are not the default (0, what DecisionPolicy and FIFO choose after the
// stream's end): what a reader of a shrunk schedule has to understand.
std::size_t non_default_decisions(const std::vector<std::uint32_t>& decisions);

// The config that replays a replay file (seed, decisions as the schedule, and its faults).
Config replay_config(const ReplayFile& replay, Config base = {});

struct ShrinkOptions {
  std::size_t runs_max = 400;  // bound on reruns spent shrinking
};

struct ShrinkResult {
  RunResult run;         // the smallest failing run found (its config replays it)
  std::size_t runs = 0;  // reruns spent
  std::size_t decisions_before = 0;
  std::size_t non_default_before = 0;
  std::size_t faults_before = 0;
  std::size_t non_default_after() const { return non_default_decisions(run.decisions); }
  std::size_t faults_after() const { return run.config.fault_plan.faults.size(); }
};

// From a failing run, with the same seed, a run that still fails with
//   1. the fewest planned faults (Config::fault_plan): chunks of faults dropped, halving,
//      then two faults of one kind on the same hosts merged into one spanning both;
//   2. the fewest non-default decisions: the shortest failing prefix (FIFO after its end),
//      then chunks of the non-zero decisions set to 0, halving (a late race keeps only
//      the few choices it needs, wherever they are);
//   3. shorter, earlier-rounded faults: each fault's duration halved and its start rounded
//      down while the run still fails;
// and these passes again while a round of them makes progress. Measured by (faults,
// non-default decisions, length, total fault time). Deterministic; at most runs_max runs.
ShrinkResult shrink(const SimBody& body, const RunResult& failing, const FailureProbe& probe = {},
                    ShrinkOptions options = {});

// Reruns config and compares trace hashes: nullopt if identical, else a report of the first
// divergence side by side.
std::optional<std::string> check_determinism(const SimBody& body, const Config& config);

// A plain async unit test's run, without a world: body runs in trellis::run under a
// fakes::MockClock that autojumps at once (threshold 0: timeouts of hours take no time) and a
// RandomPolicy(seed) (each seed its own schedule, the same one every time). Returns what the
// body returned; rethrows what it threw (a DeadlockError, for one).
void run_unit(const std::function<void()>& body, std::uint64_t seed);

// The seeds of shard `index` of `total` for a sweep of `count` seeds from `base`: a fixed
// function of (base, index, total) — seed base + i for every i = index (mod total).
std::vector<std::uint64_t> shard_seeds(std::uint64_t base, std::uint64_t count, std::uint64_t index,
                                       std::uint64_t total);

}  // namespace trellis::sim
