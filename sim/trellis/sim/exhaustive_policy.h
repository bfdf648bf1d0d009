// trellis/sim/exhaustive_policy.h — ExhaustivePolicy: one run of a systematic exploration
// (explore.h). It takes the choices of a given prefix, then the default choice at every
// later point, and logs every choice point so that the explorer can pick the next prefix.
//
// The default is the non-preemptive choice: the task that took the last step, if it is
// still runnable (it reached a checkpoint), steps again; otherwise the earliest woken task
// (index 0), as for any choice that is not the next task (simultaneous events, user
// choices). Choosing another task while the last one is still runnable is a preemption, the
// unit of CHESS's context bound (Musuvathi & Qadeer, PLDI 2007).
//
// Fairness: a task that polls (a loop of checkpoints waiting for another task) would run
// forever under the default. So once the last task has taken fair_steps_max consecutive
// steps while others were runnable, the point is logged with no continuing task: every
// choice there is free (not a preemption) and the default is the earliest woken other task.
//
//   std::vector<trellis::sim::ChoicePoint> log;
//   trellis::sim::ExhaustivePolicy policy({0, 1}, &log);
//   trellis::run(main, {.clock = &mock, .policy = &policy});   // log: every choice made
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/sim/step_policy.h"

namespace trellis::sim {

// One choice made during a run (choices among one are neither made nor logged).
struct ChoicePoint {
  std::uint32_t n = 0;       // choices offered, >= 2
  std::uint32_t chosen = 0;  // < n
  // The index of the task that took the last step, still runnable: choosing any other is a
  // preemption. n when there is none (blocked, done, fairness, or not a next-task choice).
  std::uint32_t continuing = 0;
  // What a run takes here when no prefix says otherwise: continuing if < n, else 0, or under
  // fairness the earliest woken task other than the last one.
  std::uint32_t preferred = 0;

  bool is_preemption(std::uint32_t choice) const noexcept {
    return continuing < n && choice != continuing;
  }
};

class ExhaustivePolicy final : public StepPolicy {
 public:
  static constexpr std::uint64_t kFairStepsMaxDefault = 1000;

  // `log` (not owned, outlives the policy) receives one ChoicePoint per choice, in order.
  ExhaustivePolicy(std::vector<std::uint32_t> prefix, std::vector<ChoicePoint>* log,
                   std::uint64_t fair_steps_max = kFairStepsMaxDefault);

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;
  std::size_t decide_next_task(std::span<lowlevel::Task* const> runnable) override;

 private:
  std::size_t take(ChoicePoint point);

  std::vector<std::uint32_t> prefix_;
  std::vector<ChoicePoint>* log_;
  std::uint64_t fair_steps_max_;
};

}  // namespace trellis::sim
