// trellis/sync/internal/lock_core.h — the state machine shared by Lock and StrictFIFOLock
// (Trio's _LockImpl). Users see it only through those two classes; Condition reaches into it
// (owner and queue) to hand its waiters over to the lock.
#pragma once

#include <cstddef>

#include "trellis/core/task.h"
#include "trellis/sync/parking_lot.h"

namespace trellis {

struct LockStatistics {
  bool locked = false;
  const lowlevel::Task* owner = nullptr;  // the holder, or nullptr when unlocked
  std::size_t tasks_waiting = 0;          // tasks blocked in acquire()
};

namespace internal {

class LockCore {
 public:
  // name: "Lock" or "StrictFIFOLock"; acquire_what: the wait's name in deadlock reports.
  // Both string literals.
  LockCore(const char* name, const char* acquire_what) noexcept
      : name_(name), acquire_what_(acquire_what) {}
  LockCore(const LockCore&) = delete;
  LockCore& operator=(const LockCore&) = delete;

  void acquire();
  void acquire_nowait();
  bool try_acquire();  // acquire_nowait() that returns false instead of throwing WouldBlock
  void release();
  // A broken lock (its owner exited holding it) stays locked, with no owner to name.
  bool locked() const noexcept { return owner_ != nullptr || lot_.broken(); }
  bool broken() const noexcept { return lot_.broken(); }
  LockStatistics statistics() const noexcept {
    return {.locked = locked(), .owner = owner(), .tasks_waiting = lot_.size()};
  }

  // For Condition.
  const lowlevel::Task* owner() const noexcept { return lot_.broken() ? nullptr : owner_; }
  lowlevel::ParkingLot& lot() noexcept { return lot_; }

 private:
  void throw_if_broken() const;

  const char* name_;
  const char* acquire_what_;
  // Invariant: owner_ == nullptr implies lot_ is empty: release() hands the lock straight to
  // the longest waiter, so a free lock never has a queue (and a newcomer cannot barge in
  // ahead of a waiter: acquire_nowait() refuses while anyone is queued). The owner is
  // registered as the lot's breaker; once the lot is broken, owner_ is stale and unused.
  const lowlevel::Task* owner_ = nullptr;
  // Tasks blocked in acquire(), and Condition waiters moved here by notify(); whoever
  // release() unparks is the new owner before it even runs.
  lowlevel::ParkingLot lot_;
};

}  // namespace internal
}  // namespace trellis
