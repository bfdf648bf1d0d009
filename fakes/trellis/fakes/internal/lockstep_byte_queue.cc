#include "trellis/fakes/internal/lockstep_byte_queue.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"

namespace trellis::fakes::internal {

void LockstepByteQueue::close_sender() noexcept {
  sender_closed_ = true;
  something_happened();
}

void LockstepByteQueue::close_receiver() noexcept {
  receiver_closed_ = true;
  something_happened();
}

void LockstepByteQueue::wait_for(FunctionRef<bool()> done, std::string_view what) {
  // Always wakes when one end is closed: every caller reacts to that.
  while (!done() && !sender_closed_ && !receiver_closed_) waiters_.park(what);
  checkpoint();
}

void LockstepByteQueue::send_all(std::span<const std::byte> data) {
  ConflictDetector::Guard guard(send_conflict_);
  if (sender_closed_) throw ClosedResourceError("lockstep stream: the send side is closed");
  if (receiver_closed_) {
    throw BrokenResourceError("lockstep stream: the receive side is closed");
  }
  if (pending() != 0) {
    // Only a cancelled send_all leaves bytes behind (Trio asserts here instead).
    throw BrokenResourceError("lockstep stream: an earlier send_all was cancelled midway");
  }
  data_.assign(data.begin(), data.end());
  head_ = 0;
  something_happened();
  wait_for([this] { return pending() == 0; }, "lockstep send_all");
  if (sender_closed_) throw ClosedResourceError("lockstep stream: the send side is closed");
  if (pending() != 0 && receiver_closed_) {
    throw BrokenResourceError("lockstep stream: the receive side is closed");
  }
  TRELLIS_ASSERT(pending() == 0);
}

void LockstepByteQueue::wait_send_all_might_not_block() {
  ConflictDetector::Guard guard(send_conflict_);
  if (sender_closed_) throw ClosedResourceError("lockstep stream: the send side is closed");
  if (receiver_closed_) {
    checkpoint();
    return;
  }
  wait_for([this] { return receiver_waiting_; }, "lockstep wait_send_all_might_not_block");
  if (sender_closed_) throw ClosedResourceError("lockstep stream: the send side is closed");
}

std::size_t LockstepByteQueue::receive_some(std::span<std::byte> buffer) {
  ConflictDetector::Guard guard(receive_conflict_);
  if (buffer.empty()) throw std::invalid_argument("max_bytes must be >= 1 (empty buffer)");
  if (receiver_closed_) throw ClosedResourceError("lockstep stream: the receive side is closed");
  // Wake wait_send_all_might_not_block, then wait for data.
  receiver_waiting_ = true;
  something_happened();
  struct ResetWaiting {
    bool& flag;
    ~ResetWaiting() { flag = false; }
  } reset_waiting{receiver_waiting_};
  wait_for([this] { return pending() != 0; }, "lockstep receive_some");
  if (receiver_closed_) throw ClosedResourceError("lockstep stream: the receive side is closed");
  if (pending() == 0) {
    TRELLIS_ASSERT(sender_closed_);
    return 0;
  }
  const std::size_t n = std::min(buffer.size(), pending());
  std::memcpy(buffer.data(), data_.data() + head_, n);
  head_ += n;
  if (pending() == 0) {
    data_.clear();
    head_ = 0;
  }
  something_happened();  // may complete the send_all
  return n;
}

}  // namespace trellis::fakes::internal
