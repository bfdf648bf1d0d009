#include "trellis/sync/capacity_limiter.h"

#include <algorithm>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/run.h"

namespace trellis {

bool CapacityLimiter::try_borrow(const void* borrower) {
  lot_.touch(lowlevel::Access::kWrite);
  if (borrowers_.contains(borrower)) {
    throw UsageError("this borrower is already holding one of this CapacityLimiter's tokens");
  }
  if (borrowers_.size() >= total_tokens_ || !lot_.empty()) return false;
  borrowers_.emplace(borrower, borrow_count_++);
  return true;
}

void CapacityLimiter::acquire_on_behalf_of_nowait(const void* borrower) {
  if (!try_borrow(borrower)) throw WouldBlock("no CapacityLimiter token available");
}

void CapacityLimiter::acquire_nowait() {
  acquire_on_behalf_of_nowait(&lowlevel::current_task());
}

bool CapacityLimiter::try_lock() {
  return try_borrow(&lowlevel::current_task());
}

void CapacityLimiter::acquire_on_behalf_of(const void* borrower) {
  lowlevel::fast::checkpoint_if_cancelled();
  if (try_borrow(borrower)) {
    lowlevel::fast::cancel_shielded_checkpoint();
    return;
  }
  // wake_waiters() records `borrower` (our tag) as a borrower before it wakes us; a cancelled
  // wait takes its tag with it.
  // (By the time we run, someone may already have released it on our behalf.)
  lot_.park("CapacityLimiter::acquire", borrower);
}

void CapacityLimiter::acquire() {
  acquire_on_behalf_of(&lowlevel::current_task());
}

void CapacityLimiter::release_on_behalf_of(const void* borrower) {
  lot_.touch(lowlevel::Access::kWrite);
  if (borrowers_.erase(borrower) == 0) {
    throw UsageError("this borrower isn't holding any of this CapacityLimiter's tokens");
  }
  wake_waiters();
}

void CapacityLimiter::release() {
  release_on_behalf_of(&lowlevel::current_task());
}

void CapacityLimiter::set_total_tokens(std::size_t total_tokens) {
  lot_.touch(lowlevel::Access::kWrite);
  total_tokens_ = total_tokens;
  wake_waiters();
}

void CapacityLimiter::wake_waiters() {
  // Reserve first so that recording a woken borrower cannot fail halfway through.
  const std::size_t wake_max = std::min(available_tokens(), lot_.size());
  TRELLIS_MAYBE(wake_max == 0);
  if (wake_max == 0) return;
  borrowers_.reserve(borrowers_.size() + wake_max);
  const std::size_t woken = lot_.unpark_each(wake_max, [&](lowlevel::Task&, const void* tag) {
    // A second waiter for the same borrower shares its token, as in Trio (a set).
    borrowers_.emplace(tag, borrow_count_++);
  });
  TRELLIS_ASSERT(woken == wake_max);
}

CapacityLimiterStatistics CapacityLimiter::statistics() const {
  lot_.touch(lowlevel::Access::kRead);
  std::vector<std::pair<std::uint64_t, const void*>> ordered;
  ordered.reserve(borrowers_.size());
  for (const auto& [borrower, order] : borrowers_) ordered.emplace_back(order, borrower);
  std::sort(ordered.begin(), ordered.end());
  CapacityLimiterStatistics statistics{.borrowed_tokens = borrowers_.size(),
                                       .total_tokens = total_tokens_,
                                       .borrowers = {},
                                       .tasks_waiting = lot_.size()};
  statistics.borrowers.reserve(ordered.size());
  for (const auto& [order, borrower] : ordered) statistics.borrowers.push_back(borrower);
  return statistics;
}

}  // namespace trellis
