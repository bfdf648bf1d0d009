// trellis/core/internal/deadline_heap.h — the pending deadlines of a run.
//
// An indexed binary min-heap of DeadlineTimers keyed by (deadline, registration sequence):
// push, remove and update are O(log n) at any size (a run with 1e6 sleeping tasks stays fast),
// and ties between equal deadlines break by registration order, never by address, so the
// order in which simultaneous deadlines fire is deterministic. Each timer stores its own heap
// position, which is what makes removal O(log n). Two kinds of timers live here: a cancel
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
  // Invariant: slot != kNotRegistered iff the timer is in a heap; the heap's position table
  // says where. (The position lives in the heap's own table, not here: sifting then writes
  // one compact array instead of timers scattered over as many task stacks.)
  std::uint32_t slot = kNotRegistered;
  // Called (on the run-loop thread) once the timer has been popped because it expired.
  void (*expire)(DeadlineTimer& timer) = nullptr;
  void* owner = nullptr;
  bool registered() const noexcept { return slot != kNotRegistered; }
};

class DeadlineHeap {
 public:
  // A 4-ary heap: half the levels of a binary heap, and a node's four children share one
  // or two cache lines, which is what bounds a pop among 1e6 pending deadlines.
  static constexpr std::size_t kArity = 4;

  struct Entry {
    Time deadline;
    std::uint64_t sequence;
    std::uint32_t slot;
  };

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  Time top_deadline() const noexcept {
    TRELLIS_ASSERT(!heap_.empty());
    return heap_.front().deadline;
  }

  void push(DeadlineTimer& timer, Time deadline) {
    TRELLIS_ASSERT(!timer.registered());
    TRELLIS_ASSERT(timer.expire != nullptr);
    std::uint32_t slot = 0;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      TRELLIS_ASSERT(slots_.size() < DeadlineTimer::kNotRegistered);
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(Slot{});
    }
    // So that remove() never allocates; grown geometrically (an exact reserve would
    // reallocate on every push that adds a slot).
    if (free_slots_.capacity() < slots_.size()) {
      free_slots_.reserve(std::max(slots_.size(), 2 * free_slots_.capacity()));
    }
    heap_.push_back(Entry{deadline, next_sequence_++, slot});
    slots_[slot] = Slot{&timer, heap_.size() - 1};
    timer.slot = slot;
    sift_up(heap_.size() - 1);
  }

  void remove(DeadlineTimer& timer) noexcept {
    TRELLIS_ASSERT(timer.registered());
    const std::size_t index = slots_[timer.slot].position;
    TRELLIS_ASSERT(index < heap_.size());
    TRELLIS_ASSERT(slots_[heap_[index].slot].timer == &timer);
    free_slots_.push_back(timer.slot);
    slots_[timer.slot].timer = nullptr;
    timer.slot = DeadlineTimer::kNotRegistered;
    const std::size_t last = heap_.size() - 1;
    if (index != last) {
      const Entry moved = heap_[last];
      heap_.pop_back();
      place(index, moved);
      if (!sift_up(index)) sift_down(index);
    } else {
      heap_.pop_back();
    }
  }

  // The timer's deadline changed; it counts as registered anew for tie-breaking.
  void update(DeadlineTimer& timer, Time deadline) noexcept {
    TRELLIS_ASSERT(timer.registered());
    const std::size_t index = slots_[timer.slot].position;
    TRELLIS_ASSERT(index < heap_.size());
    heap_[index].deadline = deadline;
    heap_[index].sequence = next_sequence_++;
    if (!sift_up(index)) sift_down(index);
  }

  DeadlineTimer& pop() noexcept {
    TRELLIS_ASSERT(!heap_.empty());
    DeadlineTimer& timer = *slots_[heap_.front().slot].timer;
    remove(timer);
    return timer;
  }

 private:
  struct Slot {
    DeadlineTimer* timer = nullptr;
    std::size_t position = 0;  // index in heap_
  };

  static bool less(const Entry& a, const Entry& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence);
  }
  void place(std::size_t index, const Entry& entry) noexcept {
    heap_[index] = entry;
    slots_[entry.slot].position = index;
  }
  // Returns true if the entry moved.
  bool sift_up(std::size_t index) noexcept {
    const Entry entry = heap_[index];
    const std::size_t start = index;
    while (index > 0) {
      const std::size_t parent = (index - 1) / kArity;
      if (!less(entry, heap_[parent])) break;
      place(index, heap_[parent]);
      index = parent;
    }
    place(index, entry);
    return index != start;
  }
  void sift_down(std::size_t index) noexcept {
    const Entry entry = heap_[index];
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
      place(index, heap_[best]);
      index = best;
    }
    place(index, entry);
  }

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace trellis::internal
