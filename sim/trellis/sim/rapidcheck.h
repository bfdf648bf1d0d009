// trellis/sim/rapidcheck.h — RapidCheck generators of schedules and fault plans, and a check
// that runs a simulated program under them: a property over a concurrent program is checked
// under generated schedules and faults, and RapidCheck shrinks a failure to a minimal one
// (fewer and smaller decisions, fewer and earlier faults), written as a replay file.
//
//   RC_GTEST_PROP(Store, Linearizable, ()) {
//     const auto decisions = *trellis::sim::gen::schedule();
//     const auto plan = *trellis::sim::gen::fault_plan(/*hosts=*/4, std::chrono::seconds(1));
//     trellis::sim::check_generated(body, {.seed = 1}, decisions, plan, "store.replay");
//   }
//
// Header-only: include it (and link rapidcheck) only where properties live. The replay file
// is rewritten by every failing run RapidCheck tries, so when it reports its minimal
// counterexample the file holds exactly that; rerun it with
//   trellis::sim::run_simulation(body, trellis::sim::replay_config(read_replay_file(path)))
// (the `trellis` tool and TRELLIS_SIM_TEST read the same format).
#pragma once

#include <rapidcheck.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "trellis/sim/fault_plan.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/replay_file.h"

namespace trellis::sim::gen {

// Decision streams for DecisionPolicy: 0..length_max choices, each 0..value_max. They shrink
// to fewer, smaller choices — towards the empty stream, which is FIFO.
inline rc::Gen<std::vector<std::uint32_t>> schedule(std::size_t length_max = 512,
                                                    std::uint32_t value_max = 7) {
  return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, length_max + 1),
                         [value_max](std::size_t length) {
                           return rc::gen::container<std::vector<std::uint32_t>>(
                               length, rc::gen::inRange<std::uint32_t>(0, value_max + 1));
                         });
}

// One planned fault among `hosts` hosts within `horizon`; durations up to horizon / 2, slow
// links up to 50 ms. Shrinks towards a crash of host 0 at time 0 for no time.
inline rc::Gen<PlannedFault> planned_fault(std::uint32_t hosts, Duration horizon) {
  const auto horizon_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(horizon).count());
  const std::uint32_t host_count = hosts == 0 ? 1 : hosts;
  return rc::gen::exec([=] {
    PlannedFault f;
    f.kind = static_cast<PlannedFault::Kind>(*rc::gen::inRange<std::uint32_t>(
        0, static_cast<std::uint32_t>(PlannedFault::Kind::kCount)));
    f.at = std::chrono::microseconds(*rc::gen::inRange<std::uint64_t>(0, horizon_us + 1));
    f.a = *rc::gen::inRange<std::uint32_t>(0, host_count);
    f.b = *rc::gen::inRange<std::uint32_t>(0, host_count);
    f.duration = std::chrono::microseconds(*rc::gen::inRange<std::uint64_t>(0, horizon_us / 2 + 1));
    if (f.kind == PlannedFault::Kind::kSignal) {  // a signal number, not a host
      f.b = *rc::gen::element<std::uint32_t>(SIGTERM, SIGINT, SIGHUP, SIGUSR1);
    }
    if (f.kind == PlannedFault::Kind::kSlowLink) {
      f.latency = std::chrono::microseconds(*rc::gen::inRange<std::uint64_t>(0, 50'001));
    }
    return f;
  });
}

// 0..faults_max planned faults; shrinks towards fewer faults (each shrinking as above).
inline rc::Gen<FaultPlan> fault_plan(std::uint32_t hosts, Duration horizon,
                                     std::size_t faults_max = 4) {
  return rc::gen::map(
      rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, faults_max + 1),
                      [=](std::size_t n) {
                        return rc::gen::container<std::vector<PlannedFault>>(
                            n, planned_fault(hosts, horizon));
                      }),
      [](std::vector<PlannedFault> faults) { return FaultPlan{std::move(faults)}; });
}

}  // namespace trellis::sim::gen

namespace trellis::sim {

// How RapidCheck prints generated plans in a counterexample.
inline void showValue(const PlannedFault& fault, std::ostream& os) {
  os << describe(fault);
}
inline void showValue(const FaultPlan& plan, std::ostream& os) {
  os << plan.faults.size() << " planned faults";
  for (const PlannedFault& f : plan.faults) os << "\n  " << describe(f);
}

// Runs body with config's seed under `decisions` (DecisionPolicy) and `plan`. On failure it
// writes the replay file (scenario name `name`) and fails the property with the failure,
// the plan and the path; returns the run otherwise.
inline RunResult check_generated(const SimBody& body, Config config,
                                 std::vector<std::uint32_t> decisions, FaultPlan plan,
                                 const std::string& replay_path,
                                 const std::string& name = "property") {
  config.policy = PolicyKind::kDecisions;
  config.decisions = std::move(decisions);
  config.fault_plan = std::move(plan);
  RunResult r = run_simulation(body, config);
  if (r.failed) {
    ReplayFile replay = r.replay(name);
    replay.decisions = r.config.decisions;  // what was given: it replays exactly this run
    write_replay_file(replay_path, replay);
    std::string faults;
    for (const PlannedFault& f : r.config.fault_plan.faults) faults += "\n  " + describe(f);
    const std::string failure = r.failure + "\nseed " + std::to_string(r.config.seed) + ", " +
                                std::to_string(r.config.decisions.size()) + " decisions, " +
                                std::to_string(r.config.fault_plan.faults.size()) +
                                " planned faults" + faults + "\nreplay file: " + replay_path;
    RC_FAIL(failure);
  }
  return r;
}

}  // namespace trellis::sim
