// trellis/sim/explore.h — bounded exhaustive exploration: every schedule of a small test,
// run one after another, instead of a sample of seeds (stateless model checking).
//
//   trellis::sim::ExhaustiveResult r = trellis::sim::explore_exhaustively(
//       [] { counter_test_body(); }, {.preemption_bound = 2, .schedules_max = 10'000});
//   // r.schedules run; r.complete: all within the bound; r.failure: the first failing run,
//   // whose decisions replay it under DecisionPolicy (a replay file: r.failure->replay(..)).
//
// What is enumerated: every run is a sequence of SchedulePolicy::choose() decisions
// (ExhaustivePolicy, exhaustive_policy.h); the explorer runs the body again and again,
// depth first over those sequences, each run replaying a prefix and then taking the
// non-preemptive default. A choice that switches away from a task that is still runnable is
// a preemption; the search is bounded by the number of preemptions per schedule, and runs
// by iterative context bounding (CHESS, Musuvathi & Qadeer 2007): every schedule with 0
// preemptions, then those with exactly 1, then 2, ... up to preemption_bound. Each
// schedule runs exactly once across the levels (a choice that costs a preemption more than
// the current level allows is deferred to the next level, as a prefix), so a failure is
// found with the fewest preemptions first. Choices that are not a next-task choice
// (simultaneous events, user choices) and switches after a task blocked or finished are
// free: they are enumerated in full.
//
// Reduction: none, on purpose. Partial-order reduction (DPOR, sleep sets) prunes schedules
// that differ only in the order of independent steps, and independence needs the memory
// each step touches; Trellis sees scheduling points, not memory accesses, so two steps it
// would call independent may race on a plain int (the lost update of the tests). Pruning
// would then be unsound: it could skip the only failing schedule. Every schedule within the
// bound is run; the bound and the budget keep that finite. (Missing: an opt-in reduction
// over steps whose shared objects the user declares.)
//
// Worlds: explore_simulation explores the policy's choices for ONE seed. Everything else
// the seed decides stays fixed as data: latencies, faults, and the virtual CPU time of
// hosts' steps (cpu_config.h), which comes from its own stream of the seed, not from the
// policy. CPU time stays on, as configured: it is part of the seed (a hold only changes
// which tasks are runnable at a choice; turning it off would make races whose window needs
// virtual time unreachable by any schedule). Set config.cpu.step_time_ppm = 0 to explore
// with instant steps.
//
// Budget: schedules_max bounds the runs (a named bound, always on); a body whose choices
// differ between two runs given the same prefix (not deterministic) is a std::logic_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "trellis/core/schedule_policy.h"
#include "trellis/sim/exhaustive_policy.h"
#include "trellis/sim/harness.h"

namespace trellis::sim {

struct ExhaustiveOptions {
  // Preemptions per schedule, >= 0 (CHESS's context bound).
  int preemption_bound = 2;
  // The budget: runs at most, >= 1. Exploration stops there, incomplete.
  std::size_t schedules_max = 100'000;
  // Consecutive steps of one task before the default moves on (exhaustive_policy.h).
  std::uint64_t fair_steps_max = ExhaustivePolicy::kFairStepsMaxDefault;
};

struct ExhaustiveResult {
  std::size_t schedules = 0;  // runs made
  // Every schedule within the bound was run (false when the budget cut it or a failure
  // stopped it).
  bool complete = false;
  // The first failing run; failure->config.decisions (= failure->decisions) replay it with
  // PolicyKind::kDecisions, and failure->replay(name) is its replay file.
  std::optional<RunResult> failure;
  int failure_preemptions = -1;  // the failing schedule's preemptions (-1: no failure)
  // schedules_by_preemptions[p]: schedules run with exactly p preemptions.
  std::vector<std::size_t> schedules_by_preemptions;
  // The highest bound whose every schedule was run (-1: not even bound 0).
  int bound_covered = -1;
};

// Explores body as the main of a plain run (fakes::MockClock autojumping at once, as
// run_unit), one run per schedule, stopping at the first failure: body throws, or `probe`
// (if given) reports one after the run. Throws std::invalid_argument for bad options.
ExhaustiveResult explore_exhaustively(const std::function<void()>& body,
                                      ExhaustiveOptions options = {});
ExhaustiveResult explore_exhaustively(const std::function<void()>& body, ExhaustiveOptions options,
                                      const FailureProbe& probe);

// The same over a World: each run is run_simulation(body, config) with the policy's choices
// enumerated for config.seed (config.policy is ignored).
ExhaustiveResult explore_simulation(const SimBody& body, const Config& config,
                                    ExhaustiveOptions options = {}, const FailureProbe& probe = {});

// One line for reports: "explored 20 schedules: complete for preemption bound 2" or
// "... cut by the budget of 20 schedules (bound 1 covered)" or "... failed at ...".
std::string describe(const ExhaustiveResult& result, const ExhaustiveOptions& options);

// A plain run of body under `policy` and a MockClock autojumping at once (run_unit with a
// policy of your choice; DecisionPolicy replays an exploration's failure).
void run_unit_with(const std::function<void()>& body, SchedulePolicy& policy);

}  // namespace trellis::sim
