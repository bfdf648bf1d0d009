#include "trellis/sync/semaphore.h"

#include <cstdint>
#include <stdexcept>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/run.h"

namespace trellis {

Semaphore::Semaphore(std::size_t initial, std::optional<std::size_t> max_value)
    : value_(initial), max_value_(max_value) {
  if (max_value_ && *max_value_ < initial) {
    throw std::invalid_argument("max_values must be >= initial_value");
  }
}

bool Semaphore::try_lock() {
  lot_.touch(lowlevel::Access::kWrite);
  if (value_ == 0) return false;
  TRELLIS_ASSERT(lot_.empty());
  --value_;
  return true;
}

void Semaphore::acquire_nowait() {
  if (!try_lock()) throw WouldBlock("semaphore value is 0");
}

void Semaphore::acquire() {
  lowlevel::fast::checkpoint_if_cancelled();
  if (try_lock()) {
    lowlevel::fast::cancel_shielded_checkpoint();
    return;
  }
  // release() hands us its unit directly: the value stays 0.
  lot_.park("Semaphore::acquire");
}

void Semaphore::release() {
  lot_.touch(lowlevel::Access::kWrite);
  if (!lot_.empty()) {
    TRELLIS_ASSERT(value_ == 0);
    lowlevel::Task* woken = lot_.unpark_one();
    TRELLIS_ASSERT(woken != nullptr);
    return;
  }
  if ((max_value_ && value_ == *max_value_) || value_ == SIZE_MAX) {
    throw UsageError("semaphore released too many times");
  }
  ++value_;
}

}  // namespace trellis
