#include "trellis/sync/internal/lock_core.h"

#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"

namespace trellis::internal {

bool LockCore::try_acquire() {
  const lowlevel::Task& task = lowlevel::current_task();
  if (owner_ == &task) {
    throw UsageError(std::string("attempt to re-acquire an already held ") + name_);
  }
  if (owner_ != nullptr || !lot_.empty()) return false;
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
  // release() makes us the owner before it wakes us; a cancelled wait leaves no trace.
  lot_.park(acquire_what_);
  TRELLIS_ASSERT(owner_ == &lowlevel::current_task());
}

void LockCore::release() {
  if (owner_ != &lowlevel::current_task()) {
    throw UsageError(std::string("can't release a ") + name_ + " you don't own");
  }
  TRELLIS_MAYBE(lot_.empty());
  owner_ = lot_.unpark_one();  // nullptr (unlocked) when nobody waits
  TRELLIS_ASSERT(owner_ == nullptr || owner_->parked() == false);
}

}  // namespace trellis::internal
