// trellis/fakes/internal/lockstep_byte_queue.h — the zero-buffer rendezvous under the
// lockstep streams (Trio's trio.testing._memory_streams._LockstepByteQueue).
//
// send_all(data) parks data here and waits until receive_some has taken every byte of it (in
// as many calls as the receiver's buffers need); nothing is ever buffered beyond the one
// send_all in progress. Closing either end wakes everyone, since every operation reacts to
// it: the sender sees BrokenResourceError once the receiver is gone, the receiver sees end
// of file once the sender is gone.
//
//   auto queue = std::make_shared<LockstepByteQueue>();
//   // task A: queue->send_all(bytes("abc"));    // returns after B has received all three
//   // task B: queue->receive_some(buffer_of_2);  // "ab"; then again: "c"
//
// Not thread-safe: for the tasks of one run. Internal to trellis::fakes.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/sync/parking_lot.h"

namespace trellis::fakes::internal {

class LockstepByteQueue {
 public:
  LockstepByteQueue() = default;
  LockstepByteQueue(const LockstepByteQueue&) = delete;
  LockstepByteQueue& operator=(const LockstepByteQueue&) = delete;

  // Mark one end closed (idempotent) and wake every waiter. Never throw; not checkpoints.
  void close_sender() noexcept;
  void close_receiver() noexcept;

  // The contracts of SendStream::send_all / wait_send_all_might_not_block and
  // ReceiveStream::receive_some (io/stream.h), with zero buffering. All are checkpoints.
  // send_all: ClosedResourceError if the sender is closed (also while waiting),
  // BrokenResourceError if the receiver is closed before it took everything, or if an
  // earlier send_all was cancelled before the receiver took all its data (Trio asserts),
  // BusyResourceError if another task is in a send-side call.
  void send_all(std::span<const std::byte> data);
  // Returns once a receiver is waiting in receive_some (or the receiver is closed).
  void wait_send_all_might_not_block();
  // Returns 0 once the sender is closed and nothing is pending. std::invalid_argument if
  // buffer is empty; ClosedResourceError if the receiver is closed (also while waiting);
  // BusyResourceError if another task is receiving.
  std::size_t receive_some(std::span<std::byte> buffer);

 private:
  std::size_t pending() const noexcept { return data_.size() - head_; }
  void something_happened() noexcept { waiters_.unpark_all(); }
  // Parks until done() holds or either end is closed, then checkpoints (a full checkpoint
  // in every case).
  void wait_for(FunctionRef<bool()> done, std::string_view what);

  // The bytes of the send_all in progress that the receiver has not taken: data_[head_..].
  // Invariant: pending() > 0 only while a send_all is in progress, or after one was cancelled
  // (then the stream is broken for further sends).
  std::vector<std::byte> data_;
  std::size_t head_ = 0;
  // Invariant: each flag only goes from false to true.
  bool sender_closed_ = false;
  bool receiver_closed_ = false;
  // True while a task is inside receive_some (what wait_send_all_might_not_block waits for).
  bool receiver_waiting_ = false;
  // Everyone waiting for anything parks here; every state change wakes them all to re-check.
  lowlevel::ParkingLot waiters_;
  ConflictDetector send_conflict_{"another task is already sending"};
  ConflictDetector receive_conflict_{"another task is already receiving"};
};

}  // namespace trellis::fakes::internal
