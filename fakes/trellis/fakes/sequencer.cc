#include "trellis/fakes/sequencer.h"

#include <string>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"

namespace trellis::fakes {

Sequencer::Step Sequencer::operator()(std::uint64_t position) {
  if (claimed_.contains(position)) {
    throw UsageError("Attempted to reuse sequence point " + std::to_string(position));
  }
  if (broken_) throw UsageError("sequence broken!");
  claimed_.insert(position);
  if (position == 0) return Step(*this, position);

  try {
    if (released_.contains(position)) {
      checkpoint();
    } else {
      lowlevel::Task& task = lowlevel::current_task();
      // Named for deadlock reports; lives as long as the wait.
      const std::string what = "Sequencer step " + std::to_string(position) + " (waits for step " +
                               std::to_string(position - 1) + " to finish)";
      TRELLIS_ASSERT(!waiting_.contains(position));
      waiting_.emplace(position, &task);
      lowlevel::wait_task_rescheduled(
          [&](std::exception_ptr) {
            waiting_.erase(position);
            return lowlevel::Abort::kSucceeded;
          },
          what);
      TRELLIS_ASSERT(!waiting_.contains(position));
    }
  } catch (const Cancelled&) {
    break_sequence();
    throw UsageError("Sequencer wait cancelled -- sequence broken");
  }
  if (broken_) throw UsageError("sequence broken!");
  return Step(*this, position);
}

void Sequencer::finish(std::uint64_t position) {
  TRELLIS_ASSERT(claimed_.contains(position));
  const std::uint64_t next = position + 1;
  released_.insert(next);
  auto it = waiting_.find(next);
  if (it != waiting_.end()) {
    lowlevel::Task* task = it->second;
    waiting_.erase(it);
    lowlevel::reschedule(*task);
  }
}

void Sequencer::break_sequence() {
  broken_ = true;
  // Wake every waiter; each sees broken_ and throws. Ascending position order: deterministic.
  std::map<std::uint64_t, lowlevel::Task*> waiting = std::exchange(waiting_, {});
  for (auto& [position, task] : waiting) lowlevel::reschedule(*task);
}

}  // namespace trellis::fakes
