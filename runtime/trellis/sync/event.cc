#include "trellis/sync/event.h"

#include "trellis/base/assert.h"
#include "trellis/core/run.h"

namespace trellis {

void Event::set() noexcept {
  lot_.touch(flag_ ? lowlevel::Access::kRead : lowlevel::Access::kWrite);
  if (flag_) {
    TRELLIS_ASSERT(lot_.empty());
    return;
  }
  flag_ = true;
  // Allocation-free: waking never fails.
  lot_.unpark_each(lot_.size(), [](lowlevel::Task&, const void*) {});
  TRELLIS_ASSERT(lot_.empty());
}

void Event::wait() {
  lot_.touch(flag_ ? lowlevel::Access::kRead : lowlevel::Access::kWrite);
  if (flag_) {
    checkpoint();
    return;
  }
  lot_.park("Event::wait");
  TRELLIS_ASSERT(flag_);
}

}  // namespace trellis
