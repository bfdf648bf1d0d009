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
// Reduction (options.reduction): none by default. Reduction::kDpor is partial-order
// reduction, opt-in, because it is sound only under a contract the body must keep:
//
//   EVERY STATE TWO TASKS SHARE IS A TRELLIS OBJECT OR IS DECLARED (sim/shared.h).
//
// Trellis sees scheduling points, not memory: the primitives, memory channels and nurseries
// report what each step touched (core/access_recorder.h), and so does sim::Shared<T> /
// sim::SharedObject; a plain `int` two tasks race on is invisible, and the reduction may then
// skip the only failing schedule (without reduction, the lost update of the tests is found
// on plain ints). What it does:
//   - A step is one task running from one schedule point to the next. Two steps of
//     different tasks are DEPENDENT if either is opaque or they touch a common object and
//     are not both reads (nor both commuting updates, such as two children's clean exits
//     from one nursery). Opaque, i.e. dependent on everything: cancelling a scope, setting a
//     deadline or shield, reading the clock, start()'s started(), any simulated facet call
//     (sockets, pipes, files, signals, processes), and a step of a task that the loop woke
//     (a deadline, I/O, a thread) or after the loop touched an object. Unknown => dependent.
//     A wake-up (or spawn) orders the waker's step before the woken task's next one.
//   - The search is stateless DPOR with source sets and sleep sets (Source-DPOR: Abdulla,
//     Aronis, Jonsson & Sagonas, POPL 2014; after Flanagan & Godefroid, POPL 2005): depth
//     first, each run's steps analysed afterwards with vector clocks; for each race (two
//     dependent steps of different tasks with nothing between them in happens-before) a
//     task that can start the reversed order is added to the backtrack set of the choice
//     before the first step. Sleep sets (Godefroid 1996) skip a task at a choice when its step
//     there was explored already and nothing dependent ran since; a run in which every
//     runnable task sleeps is redundant and counted in sleep_blocked. (Flanagan & Godefroid's
//     simpler rule, add the second step's task, lost final states with sleep sets in the
//     property test: tests/sim/dpor_test.cc.)
//     For a terminating body keeping the contract, every Mazurkiewicz trace (every class of
//     schedules equal up to swapping adjacent independent steps, hence every reachable final
//     state and every failure an assertion in a step can see) is explored at least once.
//     Choices that are not the next task (simultaneous events, user choices) are enumerated
//     in full, as without reduction.
//   - No preemption bound: DPOR's backtracking is unsound under a context bound (a race may
//     need a preemption the bound forbids at the one point DPOR would reverse it; Coons,
//     Musuvathi & McKinley, OOPSLA 2013), so with reduction the bound is ignored and the
//     budget (schedules_max) alone keeps the search finite; `complete` then means every
//     Mazurkiewicz trace, with no bound at all. A body that polls (a checkpoint loop waiting
//     on another task) has unboundedly many traces: the budget cuts it, incomplete.
//   - Bounded reduction (Reduction::kBoundedDpor; `exhaustive:preemptions=P,reduction=dpor`):
//     the bounded enumeration above, skipping the subtree below a choice whose prefix is the
//     same Mazurkiewicz trace (with the same task run last) as a choice visited before with
//     no fewer preemptions spent: a state cached by its trace, which DPOR's backtracking is
//     not. Never more schedules than the bound alone (it runs a subset of them), and every
//     final state and failure the bound alone reaches, under the same contract (explore.cc
//     gives the argument; tests/sim/dpor_test.cc checks it on random programs).
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

enum class Reduction {
  kNone,  // every schedule within the preemption bound
  kDpor,  // DPOR + sleep sets, no preemption bound (see above: the body's contract)
  // Within the preemption bound, subtrees whose prefix is a trace already visited (with no
  // fewer preemptions) are skipped: never more schedules than kNone, and every final state
  // and failure kNone reaches within the bound (the same contract; explore.cc says why).
  kBoundedDpor,
};

struct ExhaustiveOptions {
  // Preemptions per schedule, >= 0 (CHESS's context bound).
  int preemption_bound = 2;
  // The budget: runs at most, >= 1. Exploration stops there, incomplete.
  std::size_t schedules_max = 100'000;
  // Consecutive steps of one task before the default moves on (exhaustive_policy.h).
  std::uint64_t fair_steps_max = ExhaustivePolicy::kFairStepsMaxDefault;
  // Partial-order reduction (kDpor ignores preemption_bound).
  Reduction reduction = Reduction::kNone;
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
  // The highest bound whose every schedule was run (-1: not even bound 0; always -1 with
  // reduction, which has no bound: see complete).
  int bound_covered = -1;
  // With reduction: runs found redundant part-way (every runnable task asleep), included in
  // schedules; schedules - sleep_blocked runs were each a different Mazurkiewicz trace.
  std::size_t sleep_blocked = 0;
  // With bounded reduction: subtrees skipped as a trace visited before.
  std::size_t pruned_subtrees = 0;
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
// "explored 6 schedules with DPOR: complete, every Mazurkiewicz trace (2 redundant)" or
// "... cut by the budget of 20 schedules (bound 1 covered)" or "... failed at ...".
std::string describe(const ExhaustiveResult& result, const ExhaustiveOptions& options);

// A plain run of body under `policy` and a MockClock autojumping at once (run_unit with a
// policy of your choice; DecisionPolicy replays an exploration's failure).
void run_unit_with(const std::function<void()>& body, SchedulePolicy& policy);

}  // namespace trellis::sim
