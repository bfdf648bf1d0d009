#include "trellis/sim/step_policy.h"

#include <algorithm>
#include <limits>

#include "trellis/base/assert.h"
#include "trellis/core/task.h"

namespace trellis::sim {

std::size_t StepPolicy::record(std::size_t index, std::size_t n) {
  TRELLIS_ASSERT(n >= 2);
  TRELLIS_ASSERT(index < n);
  TRELLIS_ASSERT(n <= std::numeric_limits<std::uint32_t>::max());
  recorded_.push_back(static_cast<std::uint32_t>(index));
  return index;
}

std::size_t StepPolicy::choose(std::size_t n, ChoiceKind kind) {
  TRELLIS_ASSERT(n >= 1);
  if (n == 1) return 0;
  return record(decide(n, kind), n);
}

void StepPolicy::order_batch(std::span<lowlevel::Task*> batch) {
  // select_batch() makes every batch a single task: there is nothing to order.
  TRELLIS_ASSERT(batch.size() <= 1);
}

std::size_t StepPolicy::select_batch(std::span<lowlevel::Task*> runnable) {
  TRELLIS_ASSERT(!runnable.empty());
  ++steps_;
  if (runnable.size() >= 2) {
    const std::size_t chosen = record(decide_next_task(runnable), runnable.size());
    // The chosen task runs now; the others keep their relative (wake-up) order.
    std::rotate(runnable.begin(), runnable.begin() + static_cast<std::ptrdiff_t>(chosen),
                runnable.begin() + static_cast<std::ptrdiff_t>(chosen) + 1);
  }
  const std::uint64_t id = runnable.front()->id();
  last_task_run_length_ = last_task_id_ == id ? last_task_run_length_ + 1 : 1;
  last_task_id_ = id;
  TRELLIS_ASSERT(last_task_run_length_ >= 1);
  return 1;
}

}  // namespace trellis::sim
