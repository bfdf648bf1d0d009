// trellis/fakes/internal/unbounded_byte_queue.h — the byte buffer under MemorySendStream and
// MemoryReceiveStream (Trio's trio.testing._memory_streams._UnboundedByteQueue).
//
// An unbounded FIFO of bytes with one reader at a time. close() is like closing the sending
// end of a channel: put() then throws ClosedResourceError, and the readers drain what is
// left, then get an empty result (end of file) forever.
//
//   UnboundedByteQueue queue;
//   queue.put(bytes("abc"));
//   queue.get_nowait(1);   // {'a'}
//   queue.get();           // {'b', 'c'}; would block (a checkpoint) if the queue were empty
//
// Not thread-safe: for the tasks of one run. Internal to trellis::fakes.
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "trellis/io/conflict_detector.h"
#include "trellis/sync/parking_lot.h"

namespace trellis::fakes {

// "As many bytes as there are": the default max_bytes of get_data(), memory_stream_pump()...
// (Trio's max_bytes=None).
inline constexpr std::size_t kAllAvailable = std::numeric_limits<std::size_t>::max();

namespace internal {

class UnboundedByteQueue {
 public:
  UnboundedByteQueue() = default;
  UnboundedByteQueue(const UnboundedByteQueue&) = delete;
  UnboundedByteQueue& operator=(const UnboundedByteQueue&) = delete;

  // Marks the queue closed (idempotent) and wakes a blocked get(). Never throws; not a
  // checkpoint.
  void close() noexcept;
  // Discards the buffered bytes, then close().
  void close_and_wipe() noexcept;

  // Appends data (may be empty) and wakes a blocked get(). Throws ClosedResourceError
  // ("virtual connection closed") if closed. Not a checkpoint.
  void put(std::span<const std::byte> data);

  // Takes up to max_bytes buffered bytes without blocking: an empty result means closed and
  // drained. Throws std::invalid_argument if max_bytes == 0, WouldBlock if the queue is open
  // and empty, BusyResourceError if a get() is in progress. Not a checkpoint.
  std::vector<std::byte> get_nowait(std::size_t max_bytes = kAllAvailable);
  // Like get_nowait, but blocks while the queue is open and empty. A checkpoint. Throws
  // std::invalid_argument (max_bytes == 0), BusyResourceError (another get() in progress),
  // Cancelled.
  std::vector<std::byte> get(std::size_t max_bytes = kAllAvailable);

  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return data_.size() - head_; }

 private:
  std::vector<std::byte> take(std::size_t max_bytes);

  // The buffered bytes are data_[head_..]: taking from the front only moves head_, and the
  // consumed prefix is erased once it is at least half of data_ (amortized O(1) per byte).
  // Invariant: head_ <= data_.size(); head_ == 0 whenever data_ is empty.
  std::vector<std::byte> data_;
  std::size_t head_ = 0;
  // Invariant: once true, stays true and put() throws.
  bool closed_ = false;
  // The reader blocked in get() (at most one, thanks to fetch_conflict_) parks here; put() and
  // close() wake it, and it re-checks (an empty put() wakes it without making it return).
  lowlevel::ParkingLot lot_;
  ConflictDetector fetch_conflict_{"another task is already fetching data"};
};

}  // namespace internal
}  // namespace trellis::fakes
