#include "trellis/sim/internal/event_queue.h"

#include "trellis/base/assert.h"

namespace trellis::sim::internal {

std::uint64_t EventQueue::schedule(Time t, Action action) {
  const std::uint64_t id = next_id_++;
  events_.emplace(std::make_pair(t, id), std::move(action));
  times_.emplace(id, t);
  TRELLIS_ASSERT(events_.size() == times_.size());
  return id;
}

bool EventQueue::cancel(std::uint64_t id) {
  auto it = times_.find(id);
  if (it == times_.end()) return false;
  events_.erase(std::make_pair(it->second, id));
  times_.erase(it);
  TRELLIS_ASSERT(events_.size() == times_.size());
  return true;
}

Time EventQueue::next_time() const {
  TRELLIS_ASSERT(!events_.empty());
  return events_.begin()->first.first;
}

std::vector<EventQueue::Action> EventQueue::take_next_instant(SchedulePolicy& policy) {
  TRELLIS_ASSERT(!events_.empty());
  const Time t = next_time();
  std::vector<Action> due;
  while (!events_.empty() && events_.begin()->first.first == t) {
    auto node = events_.extract(events_.begin());
    times_.erase(node.key().second);
    due.push_back(std::move(node.mapped()));
  }
  // Let the policy pick the order: choose the first among all, the next among the rest...
  for (std::size_t i = 0; i + 1 < due.size(); ++i) {
    const std::size_t pick = i + policy.choose(due.size() - i, ChoiceKind::kSimultaneous);
    TRELLIS_ASSERT(pick < due.size());
    std::swap(due[i], due[pick]);
  }
  TRELLIS_ASSERT(events_.size() == times_.size());
  return due;
}

}  // namespace trellis::sim::internal
