// trellis/sync/semaphore.h — Semaphore: a counter tasks take from and give back to
// (Trio's trio.Semaphore).
//
// acquire() takes one unit, waiting while the value is 0; release() gives one back, handing it
// straight to the longest waiter if there is one. Units are not owned: any task may release.
// With a max_value it is a bounded semaphore, and releasing past the bound is an error. To
// cap how many tasks do something at once, CapacityLimiter (which tracks who holds what)
// catches more mistakes.
//
//   trellis::Semaphore slots(3);
//   void fetch(Url url) {
//     std::lock_guard guard(slots);  // acquire(): at most 3 fetches at once; blocks beyond
//     download(url);                 // release() on every exit, Cancelled included
//   }
//
// Not thread-safe: for tasks of one run.
#pragma once

#include <cstddef>
#include <optional>

#include "trellis/sync/parking_lot.h"

namespace trellis {

class Semaphore {
 public:
  // Throws std::invalid_argument if max_value < initial (Trio: ValueError "max_values must be
  // >= initial_value").
  explicit Semaphore(std::size_t initial, std::optional<std::size_t> max_value = {});
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes a unit, blocking while the value is 0. A checkpoint: throws Cancelled in a
  // cancelled scope even when a unit is free; otherwise takes a free unit at once and yields
  // (without a cancel point). A cancelled wait throws Cancelled and changes nothing.
  void acquire();
  // Takes a unit without blocking. Not a checkpoint. Throws WouldBlock if the value is 0.
  void acquire_nowait();
  // Gives a unit back: to the longest waiter if any (the value stays 0), else value() + 1.
  // Not a checkpoint; never blocks. Throws UsageError("semaphore released too many times")
  // if value() is already max_value() (Trio raises ValueError); the value is then unchanged.
  void release();

  std::size_t value() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return value_;
  }
  std::optional<std::size_t> max_value() const noexcept { return max_value_; }
  // As Trio, the waiters of the underlying queue.
  lowlevel::ParkingLotStatistics statistics() const noexcept { return lot_.statistics(); }

  // BasicLockable, so std::lock_guard / std::unique_lock work: lock() is acquire(),
  // try_lock() is acquire_nowait() returning false for WouldBlock, unlock() is release().
  void lock() { acquire(); }
  bool try_lock();
  void unlock() { release(); }

 private:
  // Invariant: value_ > 0 implies lot_ is empty (release() hands units to waiters first, and
  // acquire() only parks at 0); value_ <= max_value_ when bounded.
  std::size_t value_;
  std::optional<std::size_t> max_value_;
  lowlevel::ParkingLot lot_;
};

}  // namespace trellis
