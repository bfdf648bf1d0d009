// trellis/channel/internal/ring_buffer.h — the FIFO buffer of a memory channel.
//
// A deque-like ring over one heap array whose capacity is a power of two, grown by doubling
// when full. Elements need only be move-constructible (no default constructor, no copies), so
// std::unique_ptr<T> works. Nothing is allocated until the first push_back(): a rendezvous
// channel (max_buffer_size 0) never allocates. Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/force_inline.h"

namespace trellis::internal {

template <class T>
class RingBuffer {
 public:
  RingBuffer() noexcept = default;
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;
  ~RingBuffer() {
    clear();
    deallocate(slots_, capacity_);
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // Appends at the back, growing the array if it is full. Basic guarantee if T's move
  // constructor throws while growing (every element stays in the buffer).
  TRELLIS_FORCE_INLINE void push_back(T&& value) {
    if (size_ == capacity_) grow();
    TRELLIS_ASSERT(size_ < capacity_);
    ::new (static_cast<void*>(slots_ + ((head_ + size_) & (capacity_ - 1)))) T(std::move(value));
    ++size_;
  }

  // Removes and returns the front element. The buffer must not be empty.
  TRELLIS_FORCE_INLINE T pop_front() {
    TRELLIS_ASSERT(size_ > 0);
    T& front = slots_[head_];
    T value(std::move(front));
    front.~T();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return value;
  }

  // Destroys every element; keeps the array.
  void clear() noexcept {
    for (; size_ > 0; --size_) {
      slots_[head_].~T();
      head_ = (head_ + 1) & (capacity_ - 1);
    }
    head_ = 0;
  }

 private:
  static constexpr std::size_t kCapacityMin = 4;

  static T* allocate(std::size_t capacity) { return std::allocator<T>().allocate(capacity); }
  static void deallocate(T* slots, std::size_t capacity) noexcept {
    if (slots != nullptr) std::allocator<T>().deallocate(slots, capacity);
  }

  [[gnu::noinline]] void grow() {
    const std::size_t capacity = capacity_ == 0 ? kCapacityMin : capacity_ * 2;
    TRELLIS_ASSERT(capacity > capacity_);  // no overflow
    T* slots = allocate(capacity);
    std::size_t moved = 0;
    try {
      for (; moved < size_; ++moved) {
        ::new (static_cast<void*>(slots + moved))
            T(std::move(slots_[(head_ + moved) & (capacity_ - 1)]));
      }
    } catch (...) {
      for (std::size_t i = 0; i < moved; ++i) slots[i].~T();
      deallocate(slots, capacity);
      throw;
    }
    for (std::size_t i = 0; i < size_; ++i) slots_[(head_ + i) & (capacity_ - 1)].~T();
    deallocate(slots_, capacity_);
    slots_ = slots;
    capacity_ = capacity;
    head_ = 0;
  }

  // Invariant: capacity_ is 0 or a power of two; the elements are the size_ slots starting at
  // head_, wrapping around modulo capacity_; every other slot is raw memory.
  T* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace trellis::internal
