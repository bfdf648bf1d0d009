// trellis/sim/internal/dpor_policy.h — DporPolicy: one run of an exploration with
// partial-order reduction (explore.h, Reduction::kDpor). Internal to the explorer.
//
// Like ExhaustivePolicy it replays a prefix of decisions, then takes the non-preemptive
// default, and logs every choice point. On top of that it records every STEP (one task
// running from one schedule point to the next, whether or not there was a choice), with
//   - the objects the step touched and how (core/access_recorder.h: primitives, channels,
//     nurseries, sim::Shared), or `opaque` when it did something no object describes;
//   - the steps that woke or spawned its task since its previous step (happens-before
//     edges: a woken task cannot run before its waker). A task woken by the loop itself (a
//     deadline, I/O, a RunToken closure) takes an opaque step.
// and it keeps a SLEEP SET from the prefix's end on (Godefroid): tasks whose next step was
// already explored at an ancestor and is independent of every step run since. It never
// picks a sleeping task; when every runnable task sleeps the run is redundant (an
// equivalent schedule was run before): it is marked blocked there and finishes on
// defaults, and the explorer ignores what follows.
//
//   DporLog log;
//   DporPolicy policy(prefix, frontier_sleep, &log);
//   trellis::run(main, {.clock = &mock, .policy = &policy});   // log.steps, log.nodes
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "trellis/core/access_recorder.h"
#include "trellis/core/instrument.h"
#include "trellis/sim/exhaustive_policy.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim::internal {

struct StepAccess {
  lowlevel::ObjectId object = 0;
  lowlevel::Access access = lowlevel::Access::kRead;
};

struct StepRecord {
  std::uint64_t task = 0;
  // Sorted by object, one entry per object (the strongest access of the step).
  std::vector<StepAccess> accesses;
  bool opaque = false;  // dependent on every step of another task
  // Steps that woke or spawned this task since its previous step (happens-before).
  std::vector<std::size_t> woken_by;
};

// Whether two steps of different tasks may not commute (conservative: opaque => dependent).
bool dependent(const StepRecord& a, const StepRecord& b) noexcept;

struct SleepEntry {
  std::uint64_t task = 0;
  StepRecord step;  // the step the task would take next (as explored before)
};

// One decision (a choice among >= 2).
struct DporNode {
  ChoicePoint point;
  bool task_choice = false;             // which task steps next (else: events, user)
  std::vector<std::uint64_t> runnable;  // task choices: the task id of each index
  std::vector<SleepEntry> sleep;        // asleep when the choice was made (new nodes)
  std::size_t step = 0;                 // steps logged before it: a task choice starts this step
  // Task choices: the task that took the last step (none: no step yet) and how many steps
  // in a row it took (StepPolicy::last_task_run_length(), what fairness counts).
  std::optional<std::uint64_t> last_task;
  std::uint64_t run_length = 0;
};

struct DporLog {
  std::vector<DporNode> nodes;
  std::vector<StepRecord> steps;
  // Redundant from here on (every runnable task was asleep): steps at or after blocked_step
  // and nodes at or after blocked_node are not the explorer's. SIZE_MAX: not blocked.
  std::size_t blocked_step = SIZE_MAX;
  std::size_t blocked_node = SIZE_MAX;
};

class DporPolicy final : public StepPolicy, public Instrument, public lowlevel::AccessRecorder {
 public:
  // `prefix` as ExhaustivePolicy's; `frontier_sleep` is the sleep set in force at the last
  // decision of the prefix (the first run: empty prefix, nothing asleep). `log` (not owned)
  // outlives the policy.
  DporPolicy(std::vector<std::uint32_t> prefix, std::vector<SleepEntry> frontier_sleep,
             DporLog* log, std::uint64_t fair_steps_max);
  ~DporPolicy() override;
  DporPolicy(const DporPolicy&) = delete;
  DporPolicy& operator=(const DporPolicy&) = delete;

  Instrument* instrument() noexcept override { return this; }

  // Instrument.
  void before_run() override;
  void after_run() override;
  void task_scheduled(lowlevel::Task& task) override;
  void before_task_step(lowlevel::Task& task) override;
  void before_io_wait(Duration timeout) override;

  // AccessRecorder.
  lowlevel::ObjectId new_object() noexcept override;
  void record(lowlevel::ObjectId& object, lowlevel::Access access) noexcept override;
  void record_opaque() noexcept override;
  void record_happens_before(const lowlevel::Task& task) noexcept override;

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;
  std::size_t decide_next_task(std::span<lowlevel::Task* const> runnable) override;

 private:
  // The decision index about to be made; arms the frontier's sleep set when it is reached.
  std::size_t next_decision();
  bool asleep(std::uint64_t task) const noexcept;
  void end_step();
  void block();

  std::vector<std::uint32_t> prefix_;
  std::vector<SleepEntry> frontier_sleep_;
  DporLog* log_;
  std::uint64_t fair_steps_max_;
  // Invariant: tracking_ implies every entry of sleep_ is a runnable task's next step,
  // independent of every step run since it was explored.
  bool tracking_ = false;
  std::vector<SleepEntry> sleep_;
  // The step running (index in log_->steps), or SIZE_MAX between steps (loop code).
  std::size_t current_ = SIZE_MAX;
  bool loop_touched_ = false;  // the loop recorded something: the next step is opaque
  std::map<std::uint64_t, std::vector<std::size_t>> woken_by_;  // task -> waking steps
  std::map<std::uint64_t, bool> woken_by_loop_;                 // task -> woken by the loop
  std::map<std::uint64_t, std::uint32_t> created_;              // task -> objects created
  std::uint32_t created_by_loop_ = 0;
  std::uint64_t numbered_outside_run_ = 0;  // objects created outside the run, numbered
  lowlevel::AccessRecorder* previous_recorder_ = nullptr;
  bool installed_ = false;
};

}  // namespace trellis::sim::internal
