// trellis/core/internal/deadline_heap.h — the pending deadlines of a run.
//
// An indexed binary min-heap of cancel scopes keyed by (deadline, registration sequence):
// push, remove and update are O(log n) at any size (a run with 1e6 sleeping tasks stays fast),
// and ties between equal deadlines break by registration order, never by address, so the
// order in which simultaneous deadlines fire is deterministic. Each scope stores its own heap
// position, which is what makes removal O(log n).
#pragma once

#include <cstdint>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/time.h"

namespace trellis::internal {

class DeadlineHeap {
 public:
  struct Entry {
    Time deadline;
    std::uint64_t sequence;
    CancelScope* scope;
  };

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  const Entry& top() const noexcept {
    TRELLIS_ASSERT(!heap_.empty());
    return heap_.front();
  }

  void push(CancelScope& scope) {
    TRELLIS_ASSERT(scope.deadline_index_ == CancelScope::kNotRegistered);
    heap_.push_back(Entry{scope.deadline_, next_sequence_++, &scope});
    scope.deadline_index_ = heap_.size() - 1;
    sift_up(heap_.size() - 1);
  }

  void remove(CancelScope& scope) noexcept {
    const std::size_t index = scope.deadline_index_;
    TRELLIS_ASSERT(index < heap_.size());
    TRELLIS_ASSERT(heap_[index].scope == &scope);
    scope.deadline_index_ = CancelScope::kNotRegistered;
    const std::size_t last = heap_.size() - 1;
    if (index != last) {
      heap_[index] = heap_[last];
      heap_[index].scope->deadline_index_ = index;
      heap_.pop_back();
      if (!sift_up(index)) sift_down(index);
    } else {
      heap_.pop_back();
    }
  }

  // The scope's deadline changed.
  void update(CancelScope& scope) noexcept {
    const std::size_t index = scope.deadline_index_;
    TRELLIS_ASSERT(index < heap_.size());
    TRELLIS_ASSERT(heap_[index].scope == &scope);
    heap_[index].deadline = scope.deadline_;
    heap_[index].sequence = next_sequence_++;
    if (!sift_up(index)) sift_down(index);
  }

  CancelScope& pop() noexcept {
    CancelScope& scope = *top().scope;
    remove(scope);
    return scope;
  }

 private:
  static bool less(const Entry& a, const Entry& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence);
  }
  void place(std::size_t index, const Entry& entry) noexcept {
    heap_[index] = entry;
    entry.scope->deadline_index_ = index;
  }
  // Returns true if the entry moved.
  bool sift_up(std::size_t index) noexcept {
    const Entry entry = heap_[index];
    const std::size_t start = index;
    while (index > 0) {
      const std::size_t parent = (index - 1) / 2;
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
      std::size_t child = 2 * index + 1;
      if (child >= size) break;
      if (child + 1 < size && less(heap_[child + 1], heap_[child])) ++child;
      if (!less(heap_[child], entry)) break;
      place(index, heap_[child]);
      index = child;
    }
    place(index, entry);
  }

  std::vector<Entry> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace trellis::internal
