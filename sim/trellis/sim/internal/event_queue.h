// trellis/sim/internal/event_queue.h — the world's future: events due at virtual times.
//
// Events due at the same instant are handed out in an order the schedule policy picks
// (ChoiceKind::kSimultaneous), so perturbation also covers which of simultaneous arrivals
// goes first. Ordering that must hold (bytes of one TCP connection) is kept by the network
// itself (one pending delivery event per connection), never by this queue.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "trellis/core/schedule_policy.h"
#include "trellis/core/time.h"

namespace trellis::sim::internal {

class EventQueue {
 public:
  using Action = std::function<void()>;

  // Schedules action at time t. Returns an id for cancel().
  std::uint64_t schedule(Time t, Action action);
  // Drops a pending event; false if it already ran or never existed.
  bool cancel(std::uint64_t id);

  bool empty() const noexcept { return events_.empty(); }
  std::size_t size() const noexcept { return events_.size(); }
  // Time of the earliest event. Requires !empty().
  Time next_time() const;
  // Removes every event due at next_time() and returns their actions in the order `policy`
  // chooses.
  std::vector<Action> take_next_instant(SchedulePolicy& policy);

 private:
  // Keyed by (time, sequence): deterministic iteration, FIFO among equal times before the
  // policy reorders them.
  std::map<std::pair<Time, std::uint64_t>, Action> events_;
  // id -> key, for cancel(). Invariant: same entries as events_.
  std::map<std::uint64_t, Time> times_;
  std::uint64_t next_id_ = 0;
};

}  // namespace trellis::sim::internal
