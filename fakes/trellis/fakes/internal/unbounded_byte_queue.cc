#include "trellis/fakes/internal/unbounded_byte_queue.h"

#include <algorithm>
#include <stdexcept>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"

namespace trellis::fakes::internal {

namespace {

void check_max_bytes(std::size_t max_bytes) {
  if (max_bytes < 1) throw std::invalid_argument("max_bytes must be >= 1");
}

}  // namespace

void UnboundedByteQueue::close() noexcept {
  closed_ = true;
  lot_.unpark_all();
}

void UnboundedByteQueue::close_and_wipe() noexcept {
  data_.clear();
  head_ = 0;
  close();
}

void UnboundedByteQueue::put(std::span<const std::byte> data) {
  if (closed_) throw ClosedResourceError("virtual connection closed");
  data_.insert(data_.end(), data.begin(), data.end());
  lot_.unpark_all();
}

std::vector<std::byte> UnboundedByteQueue::take(std::size_t max_bytes) {
  TRELLIS_ASSERT(closed_ || size() > 0);
  const std::size_t n = std::min(max_bytes, size());
  auto first = data_.begin() + static_cast<std::ptrdiff_t>(head_);
  std::vector<std::byte> chunk(first, first + static_cast<std::ptrdiff_t>(n));
  head_ += n;
  if (head_ == data_.size()) {
    data_.clear();
    head_ = 0;
  } else if (head_ >= data_.size() / 2) {
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  TRELLIS_ASSERT(head_ <= data_.size());
  return chunk;
}

std::vector<std::byte> UnboundedByteQueue::get_nowait(std::size_t max_bytes) {
  ConflictDetector::Guard guard(fetch_conflict_);
  check_max_bytes(max_bytes);
  if (!closed_ && size() == 0) throw WouldBlock("no data available in the memory stream");
  return take(max_bytes);
}

std::vector<std::byte> UnboundedByteQueue::get(std::size_t max_bytes) {
  ConflictDetector::Guard guard(fetch_conflict_);
  check_max_bytes(max_bytes);
  if (!closed_ && size() == 0) {
    // A full checkpoint, as Trio's park() counts as one: a cancel point now, then the park.
    checkpoint_if_cancelled();
    // Trio parks once; an empty put() (wait_send_all_might_not_block's closed-check) would
    // then wake it with nothing to return, so re-check and park again.
    while (!closed_ && size() == 0) lot_.park("UnboundedByteQueue::get");
  } else {
    checkpoint();
  }
  return take(max_bytes);
}

}  // namespace trellis::fakes::internal
