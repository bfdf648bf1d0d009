// trellis/sim/step_policy.h — StepPolicy: the base of the simulator's schedule policies. It
// runs ONE task per batch (every other runnable task is held back), so any interleaving of
// task steps is reachable, not only Trio's batch orders, and records every choice it makes.
//
// A run under a StepPolicy is a sequence of small integers (which runnable task steps next,
// which of simultaneous events fires first, ...): recorded() returns them, and a
// DecisionPolicy fed with them replays the run exactly. Subclasses say how to decide:
//
//   class AlwaysNewest final : public trellis::sim::StepPolicy {
//     std::size_t decide(std::size_t n, trellis::ChoiceKind) override { return n - 1; }
//   };
//   trellis::run(main, {.clock = &mock, .policy = &policy});
//
// One policy object drives one run. Deterministic: decisions depend only on the policy's
// seed and the sequence of calls, never on addresses or clocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "trellis/core/schedule_policy.h"

namespace trellis::sim {

class StepPolicy : public SchedulePolicy {
 public:
  std::size_t choose(std::size_t n, ChoiceKind kind) final;
  void order_batch(std::span<lowlevel::Task*> batch) final;
  std::size_t select_batch(std::span<lowlevel::Task*> runnable) final;

  // Every choice made so far, in order (each < the n it was made among).
  const std::vector<std::uint32_t>& recorded() const noexcept { return recorded_; }
  // Steps taken (select_batch calls).
  std::uint64_t steps() const noexcept { return steps_; }
  // The id of the task that took the last step (nullopt before the first), and how many
  // consecutive steps it has taken (0 before the first).
  std::optional<std::uint64_t> last_task_id() const noexcept { return last_task_id_; }
  std::uint64_t last_task_run_length() const noexcept { return last_task_run_length_; }

 protected:
  // Returns an index in [0, n); n >= 2 (a choice among one is not asked nor recorded).
  virtual std::size_t decide(std::size_t n, ChoiceKind kind) = 0;
  // Which of `runnable` (n >= 2, wake-up order) steps next. Default: decide(n, kNextTask).
  virtual std::size_t decide_next_task(std::span<lowlevel::Task* const> runnable) {
    return decide(runnable.size(), ChoiceKind::kNextTask);
  }

 private:
  std::size_t record(std::size_t index, std::size_t n);

  // Invariant: recorded_[i] < the n of the i-th choice with n >= 2.
  std::vector<std::uint32_t> recorded_;
  std::uint64_t steps_ = 0;
  std::optional<std::uint64_t> last_task_id_;
  // Invariant: 0 iff last_task_id_ is empty.
  std::uint64_t last_task_run_length_ = 0;
};

}  // namespace trellis::sim
