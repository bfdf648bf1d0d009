// trellis/core/internal/deadline_heap.h — the pending deadlines of a run.
//
// A 4-ary min-heap of DeadlineTimers keyed by (deadline, registration sequence): push and pop
// are O(log n) at any size (a run with 1e6 sleeping tasks stays fast), and ties between equal
// deadlines break by registration order, never by address, so the order in which
// simultaneous deadlines fire is deterministic. Removal is lazy: the timer's slot forgets it
// at once and its entry, now stale, is dropped when it reaches the top or when stale entries
// outnumber live ones (one O(n log n) pass). So sifting moves only the compact entries, with
// no position table to keep up to date. Two kinds of timers live here: a cancel scope's
// deadline (expiry cancels the scope) and a sleeping task's wake-up (expiry simply
// reschedules the task — no exception is thrown for an ordinary sleep).
//
// Layout, for 100k+ pending timers whose lower heap levels are cold: an entry is one 16-byte
// integer (deadline, sequence, slot) compared with a single 128-bit `<`; a node's four
// children fill exactly one 64-byte cache line (the array is offset so each sibling group is
// line-aligned); a pop walks the hole down to a leaf picking the least child without
// branching and prefetches the grandchildren's line while it compares (Floyd's bottom-up
// pop: the last entry, usually a late deadline, then sifts up from the leaf a step or none).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/internal/huge_page_memory.h"
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
  static constexpr std::size_t kArity = 4;
  // Removed entries are dropped in one pass once they outnumber the live ones (and there
  // are at least this many), so they never cost more than the live entries do.
  static constexpr std::size_t kStaleCompactMin = 1024;

  // first_sequence: where registration numbering starts (tests start near the 32-bit wrap;
  // see renumber()).
  explicit DeadlineHeap(std::uint32_t first_sequence = 0) noexcept
      : next_sequence_(first_sequence) {}
  DeadlineHeap(const DeadlineHeap&) = delete;
  DeadlineHeap& operator=(const DeadlineHeap&) = delete;
  ~DeadlineHeap() { release_storage(); }

  bool empty() const noexcept { return live_ == 0; }
  // Whether timer is registered here (pushed, and neither popped nor removed since).
  bool contains(const DeadlineTimer& timer) const noexcept {
    return timer.slot < slots_.size() && slots_[timer.slot].timer == &timer;
  }
  // Live timers (removed ones still waiting to be dropped do not count).
  std::size_t size() const noexcept { return live_; }
  Time top_deadline() const noexcept {
    TRELLIS_ASSERT(size_ > 0);
    TRELLIS_ASSERT_SLOW(live(at(0)));  // drop_stale_top() keeps the top live
    return deadline_of(at(0));
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
    if (capacity_ < size_ + 2) grow(std::max<std::size_t>(64, 2 * size_ + 2));
    if (next_sequence_ == kSequenceLimit) renumber();
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    const auto sequence = static_cast<std::uint32_t>(next_sequence_++);
    slots_[slot] = Slot{&timer, sequence, timer.expire, timer.owner};
    timer.slot = slot;
    ++size_;
    sift_up(size_ - 1, make_entry(deadline, sequence, slot));
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
    // Cannot allocate: the slot just freed is reused, push() always leaves room for one
    // more entry, and renumbering at the sequence wrap allocates nothing.
    push(timer, deadline);
  }

  DeadlineTimer& pop() noexcept {
    TRELLIS_ASSERT(size_ > 0);
    TRELLIS_ASSERT_SLOW(live(at(0)));  // drop_stale_top() keeps the top live
    DeadlineTimer& timer = *slots_[slot_of(at(0))].timer;
    pop_expiry();
    return timer;
  }

  // The owner of the top timer (for prefetching: the next timer to expire).
  void* top_owner() const noexcept {
    TRELLIS_ASSERT(size_ > 0);
    TRELLIS_ASSERT_SLOW(live(at(0)));  // drop_stale_top() keeps the top live
    return slots_[slot_of(at(0))].owner;
  }

  // The top timer itself (for prefetching: a sleeper's timer lives on its stack, beside the
  // registers its wake-up will restore).
  const void* top_timer() const noexcept {
    TRELLIS_ASSERT(size_ > 0);
    TRELLIS_ASSERT_SLOW(live(at(0)));  // drop_stale_top() keeps the top live
    return slots_[slot_of(at(0))].timer;
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
    TRELLIS_ASSERT(size_ > 0);
    TRELLIS_ASSERT_SLOW(live(at(0)));  // drop_stale_top() keeps the top live
    const std::uint32_t slot = slot_of(at(0));
    const Expiry expiry{slots_[slot].expire, slots_[slot].owner};
    release_slot(slot);
    pop_top();
    drop_stale_top();
    // The next pop reads the new top's slot (its first step prefetched it) and then the
    // slot of the least of the top's children, the top after that: start loading that one
    // now, a whole expiry ahead (with 100k timers the slot table is cold).
    if (size_ > kArity) {
      const Entry* group = &at(1);
      const Entry left = std::min(group[0], group[1]);
      const Entry right = std::min(group[2], group[3]);
      __builtin_prefetch(&slots_[slot_of(std::min(left, right))]);
    }
    return expiry;
  }

 private:
  // (deadline, sequence, slot) packed so that unsigned comparison orders by deadline, then
  // sequence; the slot never decides (sequences of entries in the heap are distinct).
  // (__extension__: users who include the umbrella header build with -Wpedantic too.)
  __extension__ typedef unsigned __int128 Entry;
  static constexpr std::uint64_t kSequenceLimit = std::uint64_t{1} << 32;
  // Entry i is stored at storage_[i + kOffset]: the children of i, 4i+1..4i+4, then sit at
  // 4(i+1)..4(i+1)+3, one 64-byte line of a 64-byte-aligned array.
  static constexpr std::size_t kOffset = kArity - 1;
  static_assert(sizeof(Entry) * kArity == kCacheLineBytes);

  static Entry make_entry(Time deadline, std::uint32_t sequence, std::uint32_t slot) noexcept {
    // Flipping the sign bit maps signed order onto unsigned order.
    const std::uint64_t key =
        static_cast<std::uint64_t>(deadline.time_since_epoch().count()) ^ (std::uint64_t{1} << 63);
    return (static_cast<Entry>(key) << 64) | (static_cast<Entry>(sequence) << 32) | slot;
  }
  static Time deadline_of(Entry entry) noexcept {
    const std::uint64_t key = static_cast<std::uint64_t>(entry >> 64) ^ (std::uint64_t{1} << 63);
    return Time(Duration(static_cast<Duration::rep>(key)));
  }
  static std::uint32_t sequence_of(Entry entry) noexcept {
    return static_cast<std::uint32_t>(entry >> 32);
  }
  static std::uint32_t slot_of(Entry entry) noexcept { return static_cast<std::uint32_t>(entry); }

  struct Slot {
    DeadlineTimer* timer = nullptr;
    std::uint32_t sequence = 0;             // of the registration that holds the slot
    void (*expire)(void* owner) = nullptr;  // copies of the timer's
    void* owner = nullptr;
  };

  Entry& at(std::size_t index) noexcept { return storage_[index + kOffset]; }
  const Entry& at(std::size_t index) const noexcept { return storage_[index + kOffset]; }

  bool live(Entry entry) const noexcept {
    const Slot& slot = slots_[slot_of(entry)];
    return slot.timer != nullptr && slot.sequence == sequence_of(entry);
  }
  // Unregisters the timer; its heap entry (if any is left) is stale from now on.
  void release_slot(std::uint32_t slot) noexcept {
    slots_[slot].timer = nullptr;
    free_slots_.push_back(slot);  // capacity reserved by push()
    --live_;
  }
  // Invariant (after every public call): the heap is empty or its top entry is live.
  void drop_stale_top() noexcept {
    while (size_ > 0 && !live(at(0))) {
      pop_top();
      --stale_;
    }
  }
  void compact() noexcept {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (live(at(i))) at(kept++) = at(i);
    }
    size_ = kept;
    stale_ = 0;
    // A sorted array is a heap.
    std::sort(&at(0), &at(0) + size_);
    TRELLIS_ASSERT(size_ == live_);
  }
  // The 32-bit sequence is about to wrap (after 4e9 registrations): number the live
  // entries afresh from 0, in their order, so ties keep breaking by registration order.
  void renumber() noexcept {
    if (stale_ > 0) compact();
    std::sort(&at(0), &at(0) + size_);
    for (std::size_t i = 0; i < size_; ++i) {
      const auto sequence = static_cast<std::uint32_t>(i);
      const std::uint32_t slot = slot_of(at(i));
      slots_[slot].sequence = sequence;
      at(i) = make_entry(deadline_of(at(i)), sequence, slot);
    }
    next_sequence_ = size_;
  }

  void sift_up(std::size_t index, const Entry entry) noexcept {
    while (index > 0) {
      const std::size_t parent = (index - 1) / kArity;
      if (!(entry < at(parent))) break;
      at(index) = at(parent);
      index = parent;
    }
    at(index) = entry;
  }
  // Removes the top entry: moves the hole at the root down to a leaf along least children,
  // then fills it with the last entry.
  void pop_top() noexcept {
    const Entry last = at(size_ - 1);
    --size_;
    if (size_ == 0) return;
    std::size_t hole = 0;
    while (true) {
      const std::size_t first = kArity * hole + 1;
      if (first + kArity <= size_) {
        // The four children's own children: the lines the next step reads. Near the leaves
        // these lie past the end; a prefetch cannot fault, and bounding it measured no
        // faster (the address is computed as an integer, never as a pointer past the end).
        const std::uintptr_t grandchildren = reinterpret_cast<std::uintptr_t>(storage_) +
                                             (kArity * first + 1 + kOffset) * sizeof(Entry);
        for (std::size_t c = 0; c < kArity; ++c) {
          __builtin_prefetch(reinterpret_cast<const void*>(grandchildren + c * kCacheLineBytes));
        }
        // The least of four, selected by value without a branch (which child wins is a
        // coin toss: a branch would mispredict about once per level; reloading the winner
        // would add a load to the path each level waits on).
        const Entry* group = &at(first);
        const Entry e0 = group[0], e1 = group[1], e2 = group[2], e3 = group[3];
        std::size_t ab = static_cast<std::size_t>(e1 < e0);
        std::size_t cd = static_cast<std::size_t>(e3 < e2);
        // (Opaque to the optimizer, so that it selects rather than branches.)
        asm("" : "+r"(ab), "+r"(cd));
        const Entry left = ab != 0 ? e1 : e0;
        const Entry right = cd != 0 ? e3 : e2;
        const std::size_t mask = -static_cast<std::size_t>(right < left);
        const Entry least = left ^ ((left ^ right) & ((static_cast<Entry>(mask) << 64) | mask));
        const std::size_t best = first + (ab ^ ((ab ^ (2 + cd)) & mask));
        // best is the new top: start loading its slot (the liveness check after a pop and
        // the next pop read it) while the hole walks on down.
        if (hole == 0) __builtin_prefetch(&slots_[slot_of(least)]);
        at(hole) = least;
        hole = best;
      } else {
        if (first < size_) {
          std::size_t best = first;
          for (std::size_t child = first + 1; child < size_; ++child) {
            if (at(child) < at(best)) best = child;
          }
          at(hole) = at(best);
          hole = best;
        }
        break;
      }
    }
    sift_up(hole, last);
  }

  void grow(std::size_t capacity) {
    auto* storage = static_cast<Entry*>(allocate_table((capacity + kOffset) * sizeof(Entry)));
    if (size_ > 0) std::copy(&at(0), &at(0) + size_, storage + kOffset);
    release_storage();
    storage_ = storage;
    capacity_ = capacity;
  }
  void release_storage() noexcept {
    if (storage_ != nullptr) free_table(storage_, (capacity_ + kOffset) * sizeof(Entry));
    storage_ = nullptr;
  }

  Entry* storage_ = nullptr;  // live and stale entries, from storage_[kOffset]
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::vector<Slot, TableAllocator<Slot>> slots_;
  // Invariant: capacity() >= slots_.size(), so release_slot() never allocates.
  std::vector<std::uint32_t> free_slots_;
  std::size_t live_ = 0;
  std::size_t stale_ = 0;  // Invariant: live_ + stale_ == size_
  std::uint64_t next_sequence_ = 0;
};

}  // namespace trellis::internal
