// trellis/core/schedule_policy.h — who runs next: the run loop's one source of ordering.
//
// The policy has one decision primitive, choose(n, kind) -> index in [0, n), so every
// ordering the loop makes is a sequence of small integers that can be recorded, replayed and
// shrunk (the simulator's DecisionPolicy does exactly that). order_batch() is expressed in
// terms of choose(); a policy may override it only to make the same choices faster.
//
// Called on the run-loop thread, once per batch (not per task switch). Must be deterministic
// given its seed: no addresses, no clocks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "trellis/base/prng.h"
#include "trellis/core/time.h"

namespace trellis {

class Instrument;

namespace lowlevel {
class Task;
}

enum class ChoiceKind {
  kBatchReverse,  // Trio's coin flip: run this batch in reverse wake-up order?
  kBatchOrder,    // pick the next task of the batch among those left
  kSimultaneous,  // which of several events due at the same instant goes first
  kUser,          // a choice made by user or simulator code through the policy
  kNextTask,      // which runnable task steps next, alone (the others are held back)
};

class SchedulePolicy {
 public:
  virtual ~SchedulePolicy() = default;

  // Returns an index in [0, n). n >= 1.
  virtual std::size_t choose(std::size_t n, ChoiceKind kind) = 0;

  // Reorders `batch` (tasks in wake-up order) in place into the order they will run.
  // Default: Trio's order, a single choose(2, kBatchReverse): 0 keeps wake-up order, 1
  // reverses it.
  virtual void order_batch(std::span<lowlevel::Task*> batch);

  // Called once per batch, before order_batch(), with every runnable task in wake-up order
  // (tasks held back before come first). The policy may move tasks within `runnable` and
  // returns k in [1, runnable.size()]: the first k run in this batch, the rest are held
  // back, still runnable, for the next one. Holding back is what lets a policy run one task
  // ahead of another (under Trio's batches alone every runnable task steps once per batch,
  // so no reordering can); a policy that holds back must bound it so nothing starves.
  // Default: hold nothing back, no choice made.
  virtual std::size_t select_batch(std::span<lowlevel::Task*> runnable) { return runnable.size(); }

  // Holding a step back in time (virtual CPU time). Asked once, when a run starts: true if
  // hold_step() may return a positive duration. Default: false, and hold_step() is never
  // called (a real run pays nothing).
  virtual bool holds_steps() const noexcept { return false; }
  // Called at a schedule point where `task` (the running task) stays runnable: checkpoint(),
  // cancel_shielded_checkpoint(). A positive duration keeps the task off the run queue for
  // that long on the run's clock, as if the step it just ran had taken that much CPU time:
  // the clock may advance and other tasks and events run meanwhile. The hold is neither a
  // cancel point nor abortable (the task's checkpoint delivers a cancellation after it).
  // The simulator uses it so that a host's requests arriving close together interleave as
  // on a real server. Must be deterministic, as choose() is.
  virtual Duration hold_step(const lowlevel::Task& task) {
    (void)task;
    return Duration::zero();
  }

  // An instrument the policy needs in the run (the exhaustive explorer's step recorder,
  // which sees spawns, wake-ups and I/O waits), added after RunOptions::instruments. Asked
  // once, when the run is created; not owned. Default: none.
  virtual Instrument* instrument() noexcept { return nullptr; }
};

// The default policy: Trio's randomized batch order (each batch runs in wake-up order or its
// reverse, with probability 1/2), from a seeded Prng so a test can fix it.
class TrioPolicy final : public SchedulePolicy {
 public:
  explicit TrioPolicy(std::uint64_t seed);
  std::size_t choose(std::size_t n, ChoiceKind kind) override;
  // Inline: the run loop calls it directly (the class is final) once per batch.
  void order_batch(std::span<lowlevel::Task*> batch) override {
    if (batch.size() < 2) return;
    // choose(2, kBatchReverse), inline: the top bit of the next SplitMix64 output.
    const bool reverse = (Prng::split_mix64(state_) >> 63) != 0;
    if (batch.size() == 2) {
      // The common batch of two tasks handing work back and forth: a coin-flip branch would
      // mispredict half the time, so select instead.
      lowlevel::Task* const first = batch[0];
      lowlevel::Task* const second = batch[1];
      batch[0] = reverse ? second : first;
      batch[1] = reverse ? first : second;
      return;
    }
    if (reverse) std::reverse(batch.begin(), batch.end());
  }

 private:
  std::uint64_t state_;
};

}  // namespace trellis
