// trellis/sync/condition.h — Condition: a condition variable for tasks (Trio's
// trio.Condition).
//
// Tasks holding the condition's Lock call wait() to release it and sleep until another task,
// also holding the lock, calls notify(). Woken waiters are moved onto the lock's own queue, so
// each returns from wait() holding the lock again, in FIFO order. Check the predicate in a
// loop, as with any condition variable:
//
//   trellis::Condition changed;
//   std::deque<Job> jobs;
//   Job take() {
//     std::lock_guard guard(changed);
//     while (jobs.empty()) changed.wait();
//     Job job = std::move(jobs.front());
//     jobs.pop_front();
//     return job;
//   }
//   void put(Job job) {
//     std::lock_guard guard(changed);
//     jobs.push_back(std::move(job));
//     changed.notify();
//   }
//
// Not thread-safe: for tasks of one run. Misuse (wait or notify without holding the lock)
// throws UsageError, where Trio raises RuntimeError.
#pragma once

#include <cstddef>
#include "trellis/base/source_location.h"

#include "trellis/sync/lock.h"
#include "trellis/sync/parking_lot.h"

namespace trellis {

struct ConditionStatistics {
  std::size_t tasks_waiting = 0;   // tasks blocked in wait() not yet notified
  LockStatistics lock_statistics;  // of the underlying lock (notified waiters queue there)
};

class Condition {
 public:
  // Uses `lock` (which must outlive the condition), or a Lock of its own when nullptr. Only a
  // Lock will do (not a StrictFIFOLock), as Trio.
  explicit Condition(Lock* lock = nullptr) noexcept : lock_(lock != nullptr ? *lock : own_lock_) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // The underlying lock's acquire / acquire_nowait / release / locked (see Lock).
  void acquire(SourceLocation site = SourceLocation::current()) { lock_.acquire(site); }
  void acquire_nowait(SourceLocation site = SourceLocation::current()) {
    lock_.acquire_nowait(site);
  }
  void release() { lock_.release(); }
  bool locked() const noexcept { return lock_.locked(); }

  // Releases the lock, blocks until notify() or notify_all() picks this task, then returns
  // holding the lock again. A checkpoint (it always blocks at least once).
  // Cancelled while waiting: re-acquires the lock first, shielded from the cancellation (so
  // it may wait for the lock), then throws Cancelled, so the caller's guard still owns the
  // lock when it unwinds. Throws UsageError("must hold the lock to wait") if this task does
  // not hold the lock.
  // With RunOptions::check_lock_order, taking the lock back is checked like an acquire() at
  // `site` (sync/lock_order.h): it may throw LockOrderError, with the lock held.
  void wait(SourceLocation site = SourceLocation::current());
  // Wakes the min(n, waiting) longest waiters by moving them onto the lock's queue: each
  // returns from wait() once it is handed the lock. Not a checkpoint; never blocks. Throws
  // UsageError("must hold the lock to notify") if this task does not hold the lock.
  void notify(std::size_t n = 1);
  void notify_all();

  ConditionStatistics statistics() const noexcept {
    return {.tasks_waiting = lot_.size(), .lock_statistics = lock_.statistics()};
  }

  // BasicLockable on the underlying lock (std::lock_guard guard(condition)).
  void lock(SourceLocation site = SourceLocation::current()) { acquire(site); }
  bool try_lock(SourceLocation site = SourceLocation::current()) { return lock_.try_lock(site); }
  void unlock() { release(); }

 private:
  void require_owner(const char* message) const;

  Lock own_lock_;  // used only when no lock was given
  // Invariant: every task on lot_ released lock_ in wait() and will hold it again when
  // wait() returns or throws; notify() moves tasks from lot_ to lock_'s queue, never wakes
  // them directly.
  Lock& lock_;
  lowlevel::ParkingLot lot_;
};

}  // namespace trellis
