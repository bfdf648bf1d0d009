#include "trellis/sim/internal/sim_event_loop.h"

#include <string>

#include "trellis/core/errors.h"

namespace trellis::sim::internal {

bool SimEventLoop::wait_and_dispatch(Duration timeout) {
  TRELLIS_ASSERT(timeout >= Duration::zero());
  const Time now = clock_.now();
  const Time limit =
      timeout == Duration::max() || timeout > Time::max() - now ? Time::max() : now + timeout;
  bool dispatched = false;
  // Events due now, then (only if nothing woke up yet) the next instant within the timeout:
  // tasks woken at one instant run before time moves on.
  while (!events_.empty()) {
    const Time t = events_.next_time();
    if (t > limit) break;
    if (t > clock_.now()) {
      if (dispatched) break;
      clock_.advance_to(t);
    }
    for (EventQueue::Action& action : events_.take_next_instant(policy_)) action();
    dispatched = true;
  }
  if (!dispatched && limit != Time::max() && limit > clock_.now()) {
    // Nothing happens before the run loop's next deadline: time jumps to it.
    clock_.advance_to(limit);
  }
  TRELLIS_ASSERT(clock_.now() <= limit);
  return dispatched;
}

void SimEventLoop::enter(lowlevel::Task*& slot, const char* noun, bool for_write) {
  if (slot != nullptr) {
    throw BusyResourceError(std::string("another task is already waiting for this ") + noun +
                            " to be " + (for_write ? "writable" : "readable"));
  }
  slot = &lowlevel::current_task();
  ++waiters_;
  TRELLIS_ASSERT(waiters_ > 0);
}

void SimEventLoop::wake(lowlevel::Task*& slot, std::exception_ptr error) {
  if (slot == nullptr) return;
  lowlevel::Task* task = slot;
  leave(slot);
  lowlevel::reschedule(*task, std::move(error));
}

void SimEventLoop::leave(lowlevel::Task*& slot) noexcept {
  TRELLIS_ASSERT(slot != nullptr);
  TRELLIS_ASSERT(waiters_ > 0);  // never underflows: one leave per enter
  slot = nullptr;
  --waiters_;
}

}  // namespace trellis::sim::internal
