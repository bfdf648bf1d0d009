// trellis/sim/internal/sim_event_loop.h — SimEventLoop: the simulated backend's loop: the
// world's event queue (the one place virtual time advances) and the count of tasks parked
// until a simulated handle (socket, pipe end) is ready.
//
// Every part of the backend parks and wakes its waiters through here, so the count the loop
// reports (BackendStatistics::tasks_waiting_io) is kept in one place and cannot underflow.
// A waiter lives in a slot (a handle's reader or writer): at most one task per slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/task.h"
#include "trellis/core/time.h"
#include "trellis/sim/internal/event_queue.h"
#include "trellis/sim/internal/sim_clock.h"

namespace trellis::sim::internal {

class SimEventLoop {
 public:
  SimEventLoop(SimClock& clock, SchedulePolicy& policy) : clock_(clock), policy_(policy) {}

  // Backend::wait_and_dispatch: runs the events due now, or else those of the next instant
  // within timeout (advancing virtual time to it); with none, time jumps to the timeout.
  bool wait_and_dispatch(Duration timeout);

  Time now() const noexcept { return clock_.now(); }
  // Schedules action at virtual time t; a t already past (a connection attempt's deadline
  // overtaken by a slow link) runs at the next dispatch, before the events due then.
  std::uint64_t at(Time t, EventQueue::Action action) {
    return events_.schedule(t, std::move(action));
  }
  EventQueue& events() noexcept { return events_; }
  const EventQueue& events() const noexcept { return events_; }
  // Tasks parked in a slot.
  std::size_t waiters() const noexcept { return waiters_; }

  // Puts the running task in slot. Throws BusyResourceError if another task is there
  // (noun: "socket" or "pipe", for the message).
  void enter(lowlevel::Task*& slot, const char* noun, bool for_write);
  // Parks the task enter() registered until wake() reschedules it. A cancelled wait leaves
  // the slot that find_slot() returns (nullptr: the handle is gone) empty. Not a checkpoint.
  template <class FindSlot>
  void park(FindSlot find_slot, const char* what) {
    lowlevel::wait_task_rescheduled(
        [&](std::exception_ptr) {
          if (lowlevel::Task** slot = find_slot(); slot != nullptr && *slot != nullptr) {
            leave(*slot);
          }
          return lowlevel::Abort::kSucceeded;
        },
        what);
  }
  // Reschedules the task in slot, if any, with error (nullptr: the handle is ready).
  void wake(lowlevel::Task*& slot, std::exception_ptr error = nullptr);

 private:
  void leave(lowlevel::Task*& slot) noexcept;

  SimClock& clock_;
  SchedulePolicy& policy_;
  EventQueue events_;
  // Invariant: waiters_ == the number of non-null slots across the backend's parts.
  std::size_t waiters_ = 0;
};

}  // namespace trellis::sim::internal
