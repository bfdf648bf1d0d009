#include "trellis/sync/condition.h"

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"

namespace trellis {

void Condition::require_owner(const char* message) const {
  lot_.touch(lowlevel::Access::kWrite);  // exploration: every operation goes through here
  if (lock_.core_.owner() != &lowlevel::current_task()) throw UsageError(message);
}

void Condition::wait(SourceLocation site) {
  require_owner("must hold the lock to wait");
  release();
  try {
    // notify() moves us to the lock's queue; the lock's release() makes us its owner and
    // wakes us, so a normal return already holds the lock.
    lot_.park("Condition::wait");
  } catch (...) {
    // Cancelled (or any error): take the lock back before letting it through, so that the
    // caller's guard releases a lock it really holds. Shielded, because the caller's scope
    // is the one being cancelled.
    CancelScope shield;
    shield.set_shield(true);
    shield.run([&] { lock_.core_.acquire(site, /*check_order=*/false); });
    TRELLIS_ASSERT(lock_.core_.owner() == &lowlevel::current_task());
    throw;
  }
  TRELLIS_ASSERT(lock_.core_.owner() == &lowlevel::current_task());
  lock_.core_.retaken(site);
}

void Condition::notify(std::size_t n) {
  require_owner("must hold the lock to notify");
  lot_.repark(lock_.core_.lot(), n);
}

void Condition::notify_all() {
  require_owner("must hold the lock to notify");
  lot_.repark_all(lock_.core_.lot());
}

}  // namespace trellis
