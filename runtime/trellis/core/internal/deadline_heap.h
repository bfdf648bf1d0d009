// trellis/core/internal/deadline_heap.h — the pending deadlines of a run.
//
// A 4-ary min-heap of DeadlineTimers keyed by (deadline, registration sequence): push and pop
// are O(log n) at any size (a run with 1e6 sleeping tasks stays fast), and ties between equal
// deadlines break by registration order, never by address, so the order in which
// simultaneous deadlines fire is deterministic. Removal is lazy: the timer's slot forgets it
// at once and its entry, now stale, is dropped when it reaches the top or when stale entries
// outnumber live ones (one O(n) pass). So sifting moves only the compact entries, with no
// position table to keep up to date — under 100k timers that bookkeeping's scattered writes
// were most of a pop's cost. Two kinds of timers live here: a cancel
// scope's deadline (expiry cancels the scope) and a sleeping task's wake-up (expiry simply
// reschedules the task — no exception is thrown for an ordinary sleep).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/time.h"

namespace trellis::internal {

struct DeadlineTimer {
  static constexpr std::uint32_t kNotRegistered = static_cast<std::uint32_t>(-1);
  // The heap slot it was last given. It is registered iff that slot still points back at
  // it (DeadlineHeap::contains): popping an expired timer leaves this field as it was, so
  // expiry never touches the timer, which usually lives on a sleeping task's stack, cold
  // memory (with 100k tasks asleep, a TLB miss even for a store).
  std::uint32_t slot = kNotRegistered;
  // Called (on the run-loop thread) with `owner` once the timer has been popped because it
  // expired. The heap keeps copies of both, so expiring a timer never reads the timer.
  void (*expire)(void* owner) = nullptr;
  void* owner = nullptr;
};

class DeadlineHeap {
 public:
  // A 4-ary heap: half the levels of a binary heap, and a node's four children share one
  // or two cache lines, which is what bounds a pop among 1e6 pending deadlines.
  static constexpr std::size_t kArity = 4;
  // Removed entries are dropped in one O(n) pass once they outnumber the live ones (and
  // there are at least this many), so they never cost more than the live entries do.
  static constexpr std::size_t kStaleCompactMin = 1024;

  struct Entry {
    Time deadline;
    // Registration order (ties between equal deadlines) and identity: an entry is live iff
    // its slot still holds this sequence.
    std::uint64_t sequence;
    std::uint32_t slot;
  };

  bool empty() const noexcept { return live_ == 0; }
  // Whether timer is registered here (pushed, and neither popped nor removed since).
  bool contains(const DeadlineTimer& timer) const noexcept {
    return timer.slot < slots_.size() && slots_[timer.slot].timer == &timer;
  }
  // Live timers (removed ones still waiting to be dropped do not count).
  std::size_t size() const noexcept { return live_; }
  Time top_deadline() const noexcept {
    TRELLIS_ASSERT(!heap_.empty() && live(heap_.front()));
    return heap_.front().deadline;
  }

  void push(DeadlineTimer& timer, Time deadline) {
    TRELLIS_ASSERT(!contains(timer));
    TRELLIS_ASSERT(timer.expire != nullptr);
    // Reserve first: nothing below can then throw, and remove()/pop() never allocate.
    if (free_slots_.empty()) {
      TRELLIS_ASSERT(slots_.size() < DeadlineTimer::kNotRegistered);
      slots_.push_back(Slot{});
      free_slots_.push_back(static_cast<std::uint32_t>(slots_.size() - 1));
    }
    // Room for this entry and one more: update() (remove + push) then never allocates.
    if (heap_.capacity() < heap_.size() + 2) {
      heap_.reserve(std::max<std::size_t>(64, 2 * heap_.size() + 2));
    }
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    const std::uint64_t sequence = next_sequence_++;
    slots_[slot] = Slot{&timer, sequence, timer.expire, timer.owner};
    timer.slot = slot;
    heap_.push_back(Entry{deadline, sequence, slot});
    sift_up(heap_.size() - 1);
    ++live_;
  }

  // O(1) now (the entry is only forgotten); amortized O(log n) when it is dropped.
  void remove(DeadlineTimer& timer) noexcept {
    TRELLIS_ASSERT(contains(timer));
    release_slot(timer.slot);
    timer.slot = DeadlineTimer::kNotRegistered;
    ++stale_;
    drop_stale_top();
    if (stale_ >= kStaleCompactMin && stale_ > live_) compact();
  }

  // The timer's deadline changed; it counts as registered anew for tie-breaking.
  void update(DeadlineTimer& timer, Time deadline) noexcept {
    remove(timer);
    // Cannot allocate: the slot just freed is reused, and push() always leaves room for
    // one more entry.
    push(timer, deadline);
  }

  DeadlineTimer& pop() noexcept {
    TRELLIS_ASSERT(!heap_.empty() && live(heap_.front()));
    DeadlineTimer& timer = *slots_[heap_.front().slot].timer;
    pop_expiry();
    return timer;
  }

  // The owner of the top timer (for prefetching: the next timer to expire).
  void* top_owner() const noexcept {
    TRELLIS_ASSERT(!heap_.empty() && live(heap_.front()));
    return slots_[heap_.front().slot].owner;
  }

  // What to call for a popped timer.
  struct Expiry {
    void (*expire)(void* owner);
    void* owner;
    void operator()() const { expire(owner); }
  };
  // Pops the top timer (now unregistered) and returns its expiry, without touching the
  // timer object.
  Expiry pop_expiry() noexcept {
    TRELLIS_ASSERT(!heap_.empty() && live(heap_.front()));
    const std::uint32_t slot = heap_.front().slot;
    const Expiry expiry{slots_[slot].expire, slots_[slot].owner};
    release_slot(slot);
    pop_top();
    drop_stale_top();
    return expiry;
  }

 private:
  struct Slot {
    DeadlineTimer* timer = nullptr;
    std::uint64_t sequence = 0;             // of the registration that holds the slot
    void (*expire)(void* owner) = nullptr;  // copies of the timer's
    void* owner = nullptr;
  };

  bool live(const Entry& entry) const noexcept {
    return slots_[entry.slot].timer != nullptr && slots_[entry.slot].sequence == entry.sequence;
  }
  // Unregisters the timer; its heap entry (if any is left) is stale from now on.
  void release_slot(std::uint32_t slot) noexcept {
    slots_[slot].timer = nullptr;
    free_slots_.push_back(slot);  // capacity reserved by push()
    --live_;
  }
  // Invariant (after every public call): the heap is empty or its top entry is live.
  void drop_stale_top() noexcept {
    while (!heap_.empty() && !live(heap_.front())) {
      pop_top();
      --stale_;
    }
  }
  void pop_top() noexcept {
    const Entry last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0, last);
  }
  void compact() noexcept {
    std::size_t kept = 0;
    for (const Entry& entry : heap_) {
      if (live(entry)) heap_[kept++] = entry;
    }
    heap_.resize(kept);
    stale_ = 0;
    for (std::size_t i = heap_.size() / kArity + 1; i-- > 0;) {
      if (i < heap_.size()) sift_down(i, heap_[i]);
    }
    TRELLIS_ASSERT(heap_.size() == live_);
  }

  static bool less(const Entry& a, const Entry& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence);
  }
  void sift_up(std::size_t index) noexcept {
    const Entry entry = heap_[index];
    while (index > 0) {
      const std::size_t parent = (index - 1) / kArity;
      if (!less(entry, heap_[parent])) break;
      heap_[index] = heap_[parent];
      index = parent;
    }
    heap_[index] = entry;
  }
  // Places entry at index or below (index's own entry is overwritten).
  void sift_down(std::size_t index, const Entry entry) noexcept {
    const std::size_t size = heap_.size();
    while (true) {
      const std::size_t first_child = kArity * index + 1;
      if (first_child >= size) break;
      const std::size_t end = first_child + kArity < size ? first_child + kArity : size;
      std::size_t best = first_child;
      for (std::size_t child = first_child + 1; child < end; ++child) {
        if (less(heap_[child], heap_[best])) best = child;
      }
      if (!less(heap_[best], entry)) break;
      heap_[index] = heap_[best];
      index = best;
    }
    heap_[index] = entry;
  }

  std::vector<Entry> heap_;  // live and stale entries
  std::vector<Slot> slots_;
  // Invariant: capacity() >= slots_.size(), so release_slot() never allocates.
  std::vector<std::uint32_t> free_slots_;
  std::size_t live_ = 0;
  std::size_t stale_ = 0;  // Invariant: live_ + stale_ == heap_.size()
  std::uint64_t next_sequence_ = 0;
};

}  // namespace trellis::internal
