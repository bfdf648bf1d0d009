#include "trellis/sync/internal/lock_core.h"

#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/run.h"
#include "trellis/sync/internal/lock_tracker.h"

namespace trellis::internal {

void LockCore::throw_if_broken() const {
  if (lot_.broken()) {
    throw BrokenResourceError(std::string("the owner of this ") + name_ +
                              " exited without releasing it: " + lot_.broken_by());
  }
}

bool LockCore::take_if_free(lowlevel::Task& task) {
  lot_.touch(lowlevel::Access::kWrite);
  throw_if_broken();
  if (owner_ == &task) {
    throw UsageError(std::string("attempt to re-acquire an already held ") + name_);
  }
  if (owner_ != nullptr || !lot_.empty()) return false;
  lowlevel::add_parking_lot_breaker(task, lot_);
  owner_ = &task;
  return true;
}

bool LockCore::try_acquire(const SourceLocation& site) {
  lowlevel::Task& task = lowlevel::fast::current_task();
  if (!take_if_free(task)) return false;
  // A trylock never waits, so it cannot close a deadlock: recorded as held, not checked.
  if (LockTracker* tracker = LockTracker::current(); tracker != nullptr) [[unlikely]] {
    tracker->acquired(*this, task, site);
  }
  return true;
}

void LockCore::acquire_nowait(const SourceLocation& site) {
  if (!try_acquire(site)) throw WouldBlock(std::string(name_) + " is held by another task");
}

void LockCore::acquire(const SourceLocation& site, bool check_order) {
  lowlevel::fast::checkpoint_if_cancelled();
  lowlevel::Task& task = lowlevel::fast::current_task();
  LockTracker* tracker = LockTracker::current();
  // Checked before taking it, free or not: the order is the bug, whether or not this schedule
  // happens to deadlock on it.
  if (tracker != nullptr && check_order) [[unlikely]] {
    if (owner_ == &task) take_if_free(task);  // throws the re-acquire UsageError first
    tracker->check_order(*this, task, site);
  }
  if (take_if_free(task)) {
    if (tracker != nullptr) [[unlikely]]
      tracker->acquired(*this, task, site);
    lowlevel::fast::cancel_shielded_checkpoint();
    return;
  }
  // release() makes us the owner before it wakes us; a cancelled wait leaves no trace. If
  // the owner dies holding the lock, the lot breaks and wakes us with BrokenResourceError.
  struct WaitRecord {
    LockTracker* tracker;
    const lowlevel::Task& task;
    ~WaitRecord() {
      if (tracker != nullptr) tracker->wait_ends(task);
    }
  } wait_record{tracker, task};
  if (tracker != nullptr) [[unlikely]]
    tracker->wait_begins(*this, task);
  try {
    lot_.park(acquire_what_);
  } catch (const BrokenResourceError&) {
    throw_if_broken();
    throw;
  }
  TRELLIS_ASSERT(owner_ == &task);
  if (tracker != nullptr) [[unlikely]]
    tracker->acquired(*this, task, site);
}

void LockCore::retaken(const SourceLocation& site) {
  lowlevel::Task& task = lowlevel::fast::current_task();
  TRELLIS_ASSERT(owner() == &task);
  if (LockTracker* tracker = LockTracker::current(); tracker != nullptr) [[unlikely]] {
    tracker->acquired(*this, task, site);
    tracker->check_order(*this, task, site);
  }
}

void LockCore::release() {
  lot_.touch(lowlevel::Access::kWrite);
  lowlevel::Task& task = lowlevel::fast::current_task();
  if (lot_.broken() || owner_ != &task) {
    throw UsageError(std::string("can't release a ") + name_ + " you don't own");
  }
  TRELLIS_MAYBE(lot_.empty());
  if (LockTracker* tracker = LockTracker::current(); tracker != nullptr) [[unlikely]] {
    tracker->released(*this, task);
  }
  lowlevel::remove_parking_lot_breaker(task, lot_);
  lowlevel::Task* next = lot_.unpark_one();  // nullptr (unlocked) when nobody waits
  if (next != nullptr) lowlevel::add_parking_lot_breaker(*next, lot_);
  owner_ = next;
  TRELLIS_ASSERT(owner_ == nullptr || owner_->parked() == false);
}

}  // namespace trellis::internal
