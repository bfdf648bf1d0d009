#include "trellis/sync/internal/lock_core.h"

#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"

namespace trellis::internal {

void LockCore::throw_if_broken() const {
  if (lot_.broken()) {
    throw BrokenResourceError(std::string("the owner of this ") + name_ +
                              " exited without releasing it: " + lot_.broken_by());
  }
}

bool LockCore::try_acquire() {
  lowlevel::Task& task = lowlevel::current_task();
  throw_if_broken();
  if (owner_ == &task) {
    throw UsageError(std::string("attempt to re-acquire an already held ") + name_);
  }
  if (owner_ != nullptr || !lot_.empty()) return false;
  lowlevel::add_parking_lot_breaker(task, lot_);
  owner_ = &task;
  return true;
}

void LockCore::acquire_nowait() {
  if (!try_acquire()) throw WouldBlock(std::string(name_) + " is held by another task");
}

void LockCore::acquire() {
  checkpoint_if_cancelled();
  if (try_acquire()) {
    lowlevel::cancel_shielded_checkpoint();
    return;
  }
  // release() makes us the owner before it wakes us; a cancelled wait leaves no trace. If
  // the owner dies holding the lock, the lot breaks and wakes us with BrokenResourceError.
  try {
    lot_.park(acquire_what_);
  } catch (const BrokenResourceError&) {
    throw_if_broken();
    throw;
  }
  TRELLIS_ASSERT(owner_ == &lowlevel::current_task());
}

void LockCore::release() {
  lowlevel::Task& task = lowlevel::current_task();
  if (lot_.broken() || owner_ != &task) {
    throw UsageError(std::string("can't release a ") + name_ + " you don't own");
  }
  TRELLIS_MAYBE(lot_.empty());
  lowlevel::remove_parking_lot_breaker(task, lot_);
  lowlevel::Task* next = lot_.unpark_one();  // nullptr (unlocked) when nobody waits
  if (next != nullptr) lowlevel::add_parking_lot_breaker(*next, lot_);
  owner_ = next;
  TRELLIS_ASSERT(owner_ == nullptr || owner_->parked() == false);
}

}  // namespace trellis::internal
