// trellis/sync/capacity_limiter.h — CapacityLimiter: at most N borrowers at once
// (Trio's trio.CapacityLimiter).
//
// A sack of total_tokens() tokens. A borrower takes one with acquire() and puts it back with
// release(); when the sack is empty, acquire() waits its turn (FIFO). Unlike a Semaphore, the
// limiter knows who holds each token: a borrower holds at most one, and only a holder can give
// one back, which catches double releases and leaks. The borrower is the calling task unless
// given: acquire_on_behalf_of(b) takes a token for any opaque id (a thread, a connection...):
// any pointer unique to the borrower while it holds the token.
//
//   trellis::CapacityLimiter workers(40);          // at most 40 at a time
//   void crunch(Input in) {
//     std::lock_guard guard(workers);             // acquire(): blocks while 40 are busy
//     heavy_work(in);                              // release() on every exit
//   }
//
// total_tokens can change at run time: raising it wakes waiters at once; lowering it below
// borrowed_tokens() evicts nobody, it only stops new borrowers until enough return. Not
// thread-safe: for tasks of one run. Misuse throws UsageError (Trio: RuntimeError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "trellis/sync/parking_lot.h"

namespace trellis {

struct CapacityLimiterStatistics {
  std::size_t borrowed_tokens = 0;
  std::size_t total_tokens = 0;  // may be below borrowed_tokens after set_total_tokens()
  // Every current borrower (a lowlevel::Task* for tasks that borrowed for themselves), in
  // the order they got their token.
  std::vector<const void*> borrowers;
  std::size_t tasks_waiting = 0;  // tasks blocked in acquire() / acquire_on_behalf_of()
};

class CapacityLimiter {
 public:
  // SIZE_MAX tokens means no limit in practice (Trio's math.inf).
  explicit CapacityLimiter(std::size_t total_tokens) noexcept : total_tokens_(total_tokens) {}
  CapacityLimiter(const CapacityLimiter&) = delete;
  CapacityLimiter& operator=(const CapacityLimiter&) = delete;

  // Takes a token for the calling task (acquire_on_behalf_of(&lowlevel::current_task())).
  void acquire();
  void acquire_nowait();
  // Takes a token for `borrower`, blocking while none is free or others wait before it.
  // A checkpoint: throws Cancelled in a cancelled scope even when a token is free; otherwise
  // takes a free token at once and yields (without a cancel point). A cancelled wait throws
  // Cancelled and leaves no trace (no token, no pending borrower). Throws UsageError if
  // `borrower` already holds a token of this limiter.
  void acquire_on_behalf_of(const void* borrower);
  // Takes a token for `borrower` without blocking. Not a checkpoint. Throws WouldBlock if no
  // token is free or any task waits; UsageError if `borrower` already holds one.
  void acquire_on_behalf_of_nowait(const void* borrower);
  // Gives back the calling task's token (release_on_behalf_of(&lowlevel::current_task())).
  void release();
  // Gives back `borrower`'s token; if a token is then free, the longest waiter gets it before
  // this returns (it is a borrower before it even runs). Not a checkpoint; never blocks.
  // Throws UsageError if `borrower` holds no token of this limiter.
  void release_on_behalf_of(const void* borrower);

  std::size_t total_tokens() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return total_tokens_;
  }
  // Changes the capacity; waiters that now fit get their tokens before this returns. Not a
  // checkpoint; never blocks.
  void set_total_tokens(std::size_t total_tokens);
  std::size_t borrowed_tokens() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return borrowers_.size();
  }
  // total_tokens() - borrowed_tokens(), or 0 when the capacity was lowered below the tokens
  // out (Trio's goes negative).
  std::size_t available_tokens() const noexcept {
    lot_.touch(lowlevel::Access::kRead);
    return total_tokens_ > borrowers_.size() ? total_tokens_ - borrowers_.size() : 0;
  }
  CapacityLimiterStatistics statistics() const;

  // BasicLockable for the calling task: lock() is acquire(), try_lock() is acquire_nowait()
  // returning false for WouldBlock, unlock() is release().
  void lock() { acquire(); }
  bool try_lock();
  void unlock() { release(); }

 private:
  bool try_borrow(const void* borrower);  // false: would block; throws on a double borrow
  void wake_waiters();

  std::size_t total_tokens_;
  // Borrower -> the order it got its token in (for statistics()). Invariant: a waiter is
  // parked on lot_ only while borrowers_.size() >= total_tokens_ or others were queued first:
  // every release and capacity change calls wake_waiters(), which hands out free tokens.
  absl::flat_hash_map<const void*, std::uint64_t> borrowers_;
  std::uint64_t borrow_count_ = 0;  // tokens ever handed out: the next borrow order number
  // Waiting tasks, each parked with its pending borrower as the tag.
  lowlevel::ParkingLot lot_;
};

}  // namespace trellis
