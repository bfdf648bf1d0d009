// trellis/sync/internal/lock_core.h — the state machine shared by Lock and StrictFIFOLock
// (Trio's _LockImpl). Users see it only through those two classes; Condition reaches into it
// (owner and queue) to hand its waiters over to the lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include "trellis/base/source_location.h"

#include "trellis/core/task.h"
#include "trellis/sync/parking_lot.h"

namespace trellis {

struct LockStatistics {
  bool locked = false;
  const lowlevel::Task* owner = nullptr;  // the holder, or nullptr when unlocked
  std::size_t tasks_waiting = 0;          // tasks blocked in acquire()
};

namespace internal {

class LockTracker;

class LockCore {
 public:
  // name: "Lock" or "StrictFIFOLock"; acquire_what: the wait's name in deadlock reports.
  // Both string literals. user_name: the lock's own name in lock-order errors and deadlock
  // reports ("" for "Lock#N").
  LockCore(const char* name, const char* acquire_what) noexcept
      : name_(name), acquire_what_(acquire_what) {}
  LockCore(const char* name, const char* acquire_what, std::string user_name) noexcept
      : name_(name), acquire_what_(acquire_what), user_name_(std::move(user_name)) {}
  LockCore(const LockCore&) = delete;
  LockCore& operator=(const LockCore&) = delete;

  // `site`: where the caller asked, for lock-order errors (RunOptions::check_lock_order).
  // check_order false (Condition::wait() taking its lock back after a cancellation, where an
  // error would leave the caller's guard without its lock): recorded as held, not checked.
  void acquire(const SourceLocation& site, bool check_order = true);
  void acquire_nowait(const SourceLocation& site);
  // acquire_nowait() that returns false instead of throwing WouldBlock.
  bool try_acquire(const SourceLocation& site);
  void release();
  const std::string& user_name() const noexcept { return user_name_; }
  const char* kind() const noexcept { return name_; }
  // A broken lock (its owner exited holding it) stays locked, with no owner to name.
  bool locked() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return owner_ != nullptr || lot_.broken();
  }
  bool broken() const noexcept { return lot_.broken(); }
  LockStatistics statistics() const noexcept {
    return {.locked = locked(), .owner = owner(), .tasks_waiting = lot_.size()};
  }

  // For Condition (and the lock tracker).
  const lowlevel::Task* owner() const noexcept { return lot_.broken() ? nullptr : owner_; }
  // For Condition::wait(): the task was handed the lock back at `site`; tells the lock
  // tracker, which may throw LockOrderError (the task holds the lock either way).
  void retaken(const SourceLocation& site);
  lowlevel::ParkingLot& lot() noexcept { return lot_; }

 private:
  friend class LockTracker;
  void throw_if_broken() const;
  bool take_if_free(lowlevel::Task& task);

  const char* name_;
  const char* acquire_what_;
  std::string user_name_;
  // The lock's id in the lock tracker of run `tracked_generation_` (0: never tracked). Only
  // LockTracker reads or writes these.
  std::uint64_t tracked_generation_ = 0;
  std::uint32_t tracked_id_ = 0;
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
