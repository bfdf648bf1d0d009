// trellis/base/intrusive_list.h — a doubly linked list threaded through its elements.
//
// The run loop's queues (runnable tasks, tasks under a cancel status, a nursery's children)
// need O(1) insert and O(1) removal of an arbitrary element without allocation. An element
// embeds one IntrusiveListHook per list it can be on; the list is told which hook by a pointer
// to member. Iteration order is insertion order (never address order), which the simulator's
// determinism depends on. An element that can find itself from a bare IntrusiveLink (its
// OwnerOf function: lowlevel::Task, whose links sit at fixed offsets of a standard-layout base)
// saves the hook's owner pointer.
#pragma once

#include <cstddef>
#include <type_traits>

#include "trellis/base/assert.h"

namespace trellis::internal {

struct IntrusiveLink {
  IntrusiveLink* prev = nullptr;
  IntrusiveLink* next = nullptr;
  // Invariant: linked() iff the element is on exactly one list through this link.
  bool linked() const noexcept { return next != nullptr; }
};

struct IntrusiveListHook : IntrusiveLink {
  void* owner = nullptr;  // the element that embeds this hook, set on insertion
};

// Hook: a pointer to the element's IntrusiveListHook member, or (with OwnerOf) to an
// IntrusiveLink member of it or of its base.
// OwnerOf: nullptr, or a function T& (*)(IntrusiveLink*) noexcept. (Told apart by its type,
// not by comparing the pointer with nullptr: GCC does not take that comparison as a constant
// expression under -fsanitize=undefined.)
template <class T, auto Hook, auto OwnerOf = nullptr>
class IntrusiveList {
  static constexpr bool kHookKnowsOwner = std::is_null_pointer_v<decltype(OwnerOf)>;

 public:
  IntrusiveList() noexcept { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() { TRELLIS_ASSERT(empty()); }

  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t size() const noexcept { return size_; }

  void push_back(T& element) noexcept {
    IntrusiveLink& hook = element.*Hook;
    TRELLIS_ASSERT(!hook.linked());
    if constexpr (kHookKnowsOwner) (element.*Hook).owner = &element;
    hook.prev = head_.prev;
    hook.next = &head_;
    head_.prev->next = &hook;
    head_.prev = &hook;
    ++size_;
  }

  void remove(T& element) noexcept {
    IntrusiveLink& hook = element.*Hook;
    TRELLIS_ASSERT(hook.linked());
    TRELLIS_ASSERT(size_ > 0);
    hook.prev->next = hook.next;
    hook.next->prev = hook.prev;
    hook.prev = hook.next = nullptr;
    --size_;
  }

  // Forgets every element without unlinking them (for a run abandoned after a deadlock whose
  // tasks could not be unwound: their memory is leaked on purpose).
  void abandon() noexcept {
    head_.prev = head_.next = &head_;
    size_ = 0;
  }

  T& front() noexcept {
    TRELLIS_ASSERT(!empty());
    return from_hook(head_.next);
  }

  T& pop_front() noexcept {
    T& element = front();
    remove(element);
    return element;
  }

  class iterator {
   public:
    explicit iterator(IntrusiveLink* at) noexcept : at_(at) {}
    T& operator*() const noexcept { return from_hook(at_); }
    T* operator->() const noexcept { return &from_hook(at_); }
    iterator& operator++() noexcept {
      at_ = at_->next;
      return *this;
    }
    bool operator==(const iterator& other) const noexcept { return at_ == other.at_; }

   private:
    IntrusiveLink* at_;
  };
  iterator begin() noexcept { return iterator(head_.next); }
  iterator end() noexcept { return iterator(&head_); }

 private:
  static T& from_hook(IntrusiveLink* link) noexcept {
    if constexpr (kHookKnowsOwner) {
      auto* hook = static_cast<IntrusiveListHook*>(link);
      TRELLIS_ASSERT(hook->owner != nullptr);
      return *static_cast<T*>(hook->owner);
    } else {
      return OwnerOf(link);
    }
  }

  IntrusiveLink head_;
  std::size_t size_ = 0;
};

}  // namespace trellis::internal
