// trellis/sync/event.h — Event: a one-shot flag tasks can wait for (Trio's trio.Event).
//
// The flag starts false; set() makes it true for good and wakes every waiter. Because it never
// goes back, it does not matter whether set() comes before or after wait(): no lost wake-ups.
// To signal a series of happenings, use a new Event for each (they are cheap) or a channel.
//
//   trellis::Event ready;
//   trellis::open_nursery([&](trellis::Nursery& n) {
//     n.start_soon([&] { ready.wait(); use_the_config(); });
//     load_the_config();
//     ready.set();
//   });
//
// Not thread-safe: for tasks of one run. There is no clear() (as Trio).
#pragma once

#include <cstddef>

#include "trellis/sync/parking_lot.h"

namespace trellis {

struct EventStatistics {
  std::size_t tasks_waiting = 0;  // tasks blocked in wait()
};

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return flag_;
  }
  // Sets the flag (idempotent) and wakes every waiter; each returns from wait() normally at
  // its next turn, even if its scope is cancelled before then. Not a checkpoint; never
  // blocks; never throws.
  void set() noexcept;
  // Blocks until the flag is set. Always a checkpoint: on a set event it yields and throws
  // Cancelled if the task is in a cancelled scope (as Trio's, which is a plain checkpoint).
  // Throws Cancelled if cancelled while waiting.
  void wait();

  EventStatistics statistics() const noexcept { return {.tasks_waiting = lot_.size()}; }

 private:
  // Invariant: flag_ implies lot_ is empty (set() empties it, and wait() on a set event does
  // not park); flag_ never goes from true to false.
  bool flag_ = false;
  lowlevel::ParkingLot lot_;
};

}  // namespace trellis
