// trellis/sync/lock.h — Lock and StrictFIFOLock: task mutexes (Trio's trio.Lock and
// trio.StrictFIFOLock).
//
// A non-reentrant lock owned by one task; only the owner may release it. Waiters get the lock
// strictly first-come first-served: release() hands it straight to the longest waiter, so the
// releaser cannot grab it back ahead of the queue. Both meet the standard Lockable
// requirements, so the usual guards work (and release on every exit, Cancelled included):
//
//   trellis::Lock lock;
//   void append(Log& log, Entry entry) {
//     std::lock_guard guard(lock);   // blocks this task (a checkpoint), not the thread
//     log.write(entry);              // may block too: other tasks keep running meanwhile
//   }
//
// StrictFIFOLock behaves exactly like Lock today; use it where correctness depends on the
// FIFO hand-off (Trio keeps the distinction so that Lock could one day be made unfair).
// Condition accepts only a Lock.
//
// Not thread-safe: for tasks of one run. Misuse (releasing a lock you do not hold,
// re-acquiring one you hold) throws UsageError, where Trio raises RuntimeError.
//
// Names and lock order: a lock may be given a name ("accounts"); with
// RunOptions::check_lock_order on (tests and the simulator), acquiring locks in an order that
// inverts one seen before throws LockOrderError naming both locks, both orders, their tasks
// and sites — see sync/lock_order.h. Every acquiring call records its caller's line through a
// SourceLocation default argument.
//
// A task that exits while holding the lock breaks it, as in Trio: its waiters and every later
// acquire() or acquire_nowait() throw BrokenResourceError naming the dead owner, and the lock
// stays locked. (A guard releases on every exit, so only a bug gets here.)
#pragma once

#include <string>
#include <utility>
#include "trellis/base/source_location.h"

#include "trellis/sync/internal/lock_core.h"
#include "trellis/sync/lock_order.h"

namespace trellis {

class Condition;

class Lock {
 public:
  Lock() noexcept : core_("Lock", "Lock::acquire") {}
  // `name` names the lock in lock-order errors and deadlock reports (unnamed: "Lock#N", N
  // the order in which the run first took it).
  explicit Lock(std::string name) noexcept : core_("Lock", "Lock::acquire", std::move(name)) {}
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Blocks until this task holds the lock. A checkpoint: throws Cancelled if the task is in
  // a cancelled scope, even when the lock is free; otherwise a free lock is taken at once and
  // the task yields (without a cancel point) before returning. A cancelled wait throws
  // Cancelled and leaves the lock and its queue as if it had never waited.
  // Throws UsageError if this task already holds it.
  void acquire(SourceLocation site = SourceLocation::current()) { core_.acquire(site); }
  // Takes the lock without blocking. Not a checkpoint. Throws WouldBlock if another task
  // holds it or any task is queued for it; UsageError if this task already holds it.
  void acquire_nowait(SourceLocation site = SourceLocation::current()) {
    core_.acquire_nowait(site);
  }
  // Gives the lock to the longest waiter (which holds it before it even runs), or frees it.
  // Not a checkpoint; never blocks. Throws UsageError if this task does not hold it.
  void release() { core_.release(); }
  bool locked() const noexcept { return core_.locked(); }
  // The name given at construction ("" if none).
  const std::string& name() const noexcept { return core_.user_name(); }
  LockStatistics statistics() const noexcept { return core_.statistics(); }

  // Lockable (std::lock_guard, std::unique_lock, std::scoped_lock): lock() is acquire(),
  // unlock() is release(), try_lock() is acquire_nowait() returning false for WouldBlock.
  void lock(SourceLocation site = SourceLocation::current()) { acquire(site); }
  bool try_lock(SourceLocation site = SourceLocation::current()) { return core_.try_acquire(site); }
  void unlock() { release(); }

 private:
  friend class Condition;
  internal::LockCore core_;
};

class StrictFIFOLock {
 public:
  StrictFIFOLock() noexcept : core_("StrictFIFOLock", "StrictFIFOLock::acquire") {}
  // `name` names the lock in lock-order errors and deadlock reports (unnamed: "StrictFIFOLock#N", N
  // the order in which the run first took it).
  explicit StrictFIFOLock(std::string name) noexcept
      : core_("StrictFIFOLock", "StrictFIFOLock::acquire", std::move(name)) {}
  StrictFIFOLock(const StrictFIFOLock&) = delete;
  StrictFIFOLock& operator=(const StrictFIFOLock&) = delete;

  // Exactly as Lock (above): acquire() a checkpoint that may block; the rest synchronous.
  void acquire(SourceLocation site = SourceLocation::current()) { core_.acquire(site); }
  void acquire_nowait(SourceLocation site = SourceLocation::current()) {
    core_.acquire_nowait(site);
  }
  void release() { core_.release(); }
  bool locked() const noexcept { return core_.locked(); }
  // The name given at construction ("" if none).
  const std::string& name() const noexcept { return core_.user_name(); }
  LockStatistics statistics() const noexcept { return core_.statistics(); }

  void lock(SourceLocation site = SourceLocation::current()) { acquire(site); }
  bool try_lock(SourceLocation site = SourceLocation::current()) { return core_.try_acquire(site); }
  void unlock() { release(); }

 private:
  internal::LockCore core_;
};

}  // namespace trellis
