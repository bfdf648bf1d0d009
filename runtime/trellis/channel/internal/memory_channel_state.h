// trellis/channel/internal/memory_channel_state.h — the state shared by every handle of one
// memory channel (Trio's MemoryChannelState). Users see it only through MemorySendChannel and
// MemoryReceiveChannel (trellis/channel/memory_channel.h).
//
// One channel = one state: the buffer, the count of open handles on each side, and two FIFO
// queues of blocked tasks. A blocked task's queue node lives on its own stack (in send() or
// receive()), so blocking never allocates; a value moves straight from a sender's frame into
// a waiting receiver's node (or the other way), and the buffer is used only when nobody waits.
// Handles are numbered so that closing one wakes exactly the tasks blocked through it.
// Not thread-safe: one run, one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string_view>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/force_inline.h"
#include "trellis/base/intrusive_list.h"
#include "trellis/channel/internal/ring_buffer.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"

namespace trellis {

// Statistics of one memory channel (Trio's MemoryChannelStatistics), the same through every
// handle of it.
struct MemoryChannelStatistics {
  std::size_t current_buffer_used = 0;    // values in the buffer now
  std::size_t max_buffer_size = 0;        // as passed to open_memory_channel (kUnbounded: no limit)
  std::size_t open_send_channels = 0;     // MemorySendChannel handles not yet closed
  std::size_t open_receive_channels = 0;  // MemoryReceiveChannel handles not yet closed
  std::size_t tasks_waiting_send = 0;     // tasks blocked in send(), over every handle
  std::size_t tasks_waiting_receive = 0;  // tasks blocked in receive(), over every handle
  std::size_t peak_buffer_used = 0;       // the most values the buffer has held at once
  bool operator==(const MemoryChannelStatistics&) const = default;
};

namespace internal {

template <class T>
class MemoryChannelState {
 public:
  // A send blocked on a full buffer; lives in send_blocking()'s frame.
  struct SendWaiter {
    IntrusiveListHook hook;
    lowlevel::Task* task = nullptr;
    T* value = nullptr;  // the blocked send()'s argument, moved out by the receiver that takes it
    std::uint64_t handle = 0;
  };
  // A receive blocked on an empty buffer; lives in receive_blocking()'s frame.
  struct ReceiveWaiter {
    IntrusiveListHook hook;
    lowlevel::Task* task = nullptr;
    std::optional<T> value;  // filled by the sender that hands a value over, before reschedule
    std::uint64_t handle = 0;
  };

  explicit MemoryChannelState(std::size_t max_buffer_size) noexcept
      : max_buffer_size_(max_buffer_size) {}
  MemoryChannelState(const MemoryChannelState&) = delete;
  MemoryChannelState& operator=(const MemoryChannelState&) = delete;
  // Exploration (core/access_recorder.h): every operation on the channel, through any handle,
  // touches this one object.
  void touch(lowlevel::Access access) const noexcept {
    lowlevel::record_access(access_id_, access);
  }

  ~MemoryChannelState() {
    TRELLIS_ASSERT(send_waiters_.empty());
    TRELLIS_ASSERT(receive_waiters_.empty());
  }

  // ---- handles ------------------------------------------------------------------------------
  // Every handle object (open or closed, not moved-from) holds one reference; the last one
  // deletes the state.
  std::uint64_t open_send_handle() noexcept {
    touch(lowlevel::Access::kWrite);
    ++open_send_channels_;
    ++references_;
    return next_handle_++;
  }
  std::uint64_t open_receive_handle() noexcept {
    touch(lowlevel::Access::kWrite);
    ++open_receive_channels_;
    ++references_;
    return next_handle_++;
  }
  void release() noexcept {
    TRELLIS_ASSERT(references_ > 0);
    if (--references_ == 0) delete this;
  }

  // Closes one send handle: its own blocked senders get ClosedResourceError; if it was the
  // last, every blocked receiver gets EndOfChannel (none can be blocked sending then).
  void close_send_handle(std::uint64_t handle) noexcept {
    touch(lowlevel::Access::kWrite);
    TRELLIS_ASSERT(open_send_channels_ > 0);
    wake_handle(send_waiters_, handle);
    if (--open_send_channels_ == 0) {
      TRELLIS_ASSERT(send_waiters_.empty());
      while (!receive_waiters_.empty()) {
        lowlevel::reschedule(*receive_waiters_.pop_front().task,
                             std::make_exception_ptr(EndOfChannel()));
      }
    }
  }

  // Closes one receive handle: its own blocked receivers get ClosedResourceError; if it was
  // the last, every blocked sender gets BrokenResourceError and the buffer is dropped.
  void close_receive_handle(std::uint64_t handle) noexcept {
    touch(lowlevel::Access::kWrite);
    TRELLIS_ASSERT(open_receive_channels_ > 0);
    wake_handle(receive_waiters_, handle);
    if (--open_receive_channels_ == 0) {
      TRELLIS_ASSERT(receive_waiters_.empty());
      while (!send_waiters_.empty()) {
        lowlevel::reschedule(*send_waiters_.pop_front().task,
                             std::make_exception_ptr(BrokenResourceError(
                                 "every receive channel of this memory channel was closed")));
      }
      data_.clear();
    }
  }

  // ---- sending ------------------------------------------------------------------------------
  // Trio's send_nowait without the closed check: hands `value` to the longest-waiting
  // receiver, or buffers it. Returns false (value untouched) if it would block.
  TRELLIS_FORCE_INLINE bool try_send(T& value) {
    touch(lowlevel::Access::kWrite);
    if (open_receive_channels_ == 0) {
      throw BrokenResourceError("every receive channel of this memory channel was closed");
    }
    if (!receive_waiters_.empty()) {
      TRELLIS_ASSERT(data_.empty());
      TRELLIS_ASSERT(send_waiters_.empty());
      ReceiveWaiter& waiter = receive_waiters_.front();
      waiter.value.emplace(std::move(value));  // may throw: the receiver then keeps waiting
      receive_waiters_.remove(waiter);
      lowlevel::fast::reschedule(*waiter.task);
      return true;
    }
    if (data_.size() < max_buffer_size_) {
      data_.push_back(std::move(value));
      if (data_.size() > peak_buffer_used_) peak_buffer_used_ = data_.size();
      return true;
    }
    return false;
  }

  // Blocks the calling task at the back of the send queue until a receiver takes `value`
  // (returns), its handle or every receiver closes (ClosedResourceError /
  // BrokenResourceError), or it is cancelled (Cancelled; `value` was not taken).
  TRELLIS_FORCE_INLINE void send_blocking(T& value, std::uint64_t handle) {
    TRELLIS_ASSERT(data_.size() >= max_buffer_size_);
    TRELLIS_ASSERT(receive_waiters_.empty());
    SendWaiter waiter;
    waiter.task = &lowlevel::fast::current_task();
    waiter.value = &value;
    waiter.handle = handle;
    send_waiters_.push_back(waiter);
    park(send_waiters_, waiter, "MemorySendChannel::send");
    // Woken by a receiver, which moved the value out. `this` may be gone by now.
    TRELLIS_ASSERT(!waiter.hook.linked());
  }

  // ---- receiving ----------------------------------------------------------------------------
  // Whether take() completes without blocking: a value is buffered or a sender waits, or no
  // sender is left (take() then throws EndOfChannel).
  bool can_take() const noexcept {
    touch(lowlevel::Access::kRead);
    return !data_.empty() || !send_waiters_.empty() || open_send_channels_ == 0;
  }

  // Trio's receive_nowait without the closed check. can_take() must hold.
  TRELLIS_FORCE_INLINE T take() {
    touch(lowlevel::Access::kWrite);
    if (!send_waiters_.empty()) {
      // The buffer is full (or capacity 0): the oldest blocked sender's value joins its back.
      SendWaiter& waiter = send_waiters_.front();
      TRELLIS_ASSERT(data_.size() == max_buffer_size_);
      if (data_.empty()) return take_from(waiter);
      T value = data_.pop_front();
      data_.push_back(take_from(waiter));
      return value;
    }
    if (!data_.empty()) return data_.pop_front();
    TRELLIS_ASSERT(open_send_channels_ == 0);
    throw EndOfChannel();
  }

  // Blocks the calling task at the back of the receive queue until a sender hands it a value
  // (returned), its handle closes (ClosedResourceError), every sender closes (EndOfChannel),
  // or it is cancelled (Cancelled; nothing was taken).
  TRELLIS_FORCE_INLINE T receive_blocking(std::uint64_t handle) {
    TRELLIS_ASSERT(!can_take());
    ReceiveWaiter waiter;
    waiter.task = &lowlevel::fast::current_task();
    waiter.handle = handle;
    receive_waiters_.push_back(waiter);
    park(receive_waiters_, waiter, "MemoryReceiveChannel::receive");
    // Woken by a sender, which filled the slot. `this` may be gone by now.
    TRELLIS_ASSERT(!waiter.hook.linked());
    TRELLIS_ASSERT(waiter.value.has_value());
    return std::move(*waiter.value);
  }

  MemoryChannelStatistics statistics() const noexcept {
    touch(lowlevel::Access::kRead);
    return {.current_buffer_used = data_.size(),
            .max_buffer_size = max_buffer_size_,
            .open_send_channels = open_send_channels_,
            .open_receive_channels = open_receive_channels_,
            .tasks_waiting_send = send_waiters_.size(),
            .tasks_waiting_receive = receive_waiters_.size(),
            .peak_buffer_used = peak_buffer_used_};
  }

 private:
  // Moves the value out of a blocked sender and lets it return from send().
  TRELLIS_FORCE_INLINE T take_from(SendWaiter& waiter) {
    T value(std::move(*waiter.value));  // may throw: the sender then keeps waiting
    send_waiters_.remove(waiter);
    lowlevel::fast::reschedule(*waiter.task);
    return value;
  }

  // Parks the calling task, already queued as `waiter` on `queue`, through the one suspension
  // point. A cancellation unqueues it (Abort::kSucceeded: Trio's abort_fn); every other wake-up
  // has unqueued it before rescheduling.
  template <class Waiter, class Queue>
  TRELLIS_FORCE_INLINE static void park(Queue& queue, Waiter& waiter, std::string_view what) {
    try {
      lowlevel::fast::wait_task_rescheduled(
          [&queue, &waiter](std::exception_ptr) {
            queue.remove(waiter);
            return lowlevel::Abort::kSucceeded;
          },
          what);
    } catch (...) {
      // Cancelled or woken with an error: already unqueued (the queue may be gone with the
      // state). Still queued only if the task never parked: then the queue is alive.
      if (waiter.hook.linked()) queue.remove(waiter);
      throw;
    }
  }

  // Wakes, with ClosedResourceError, every task blocked through `handle`, oldest first.
  template <class Queue>
  static void wake_handle(Queue& queue, std::uint64_t handle) noexcept {
    for (auto it = queue.begin(); it != queue.end();) {
      auto& waiter = *it;
      ++it;  // before remove() unlinks the node
      if (waiter.handle != handle) continue;
      queue.remove(waiter);
      lowlevel::reschedule(
          *waiter.task,
          std::make_exception_ptr(ClosedResourceError("this memory channel handle was closed")));
    }
  }

  const std::size_t max_buffer_size_;
  mutable lowlevel::ObjectId access_id_ = lowlevel::new_object_id();
  // Invariant: data_.size() <= max_buffer_size_; if receive_waiters_ is non-empty, data_ is
  // empty and send_waiters_ is empty; if send_waiters_ is non-empty, data_ is full. So at
  // most one queue is non-empty, and a value never waits in the buffer while a receiver
  // waits (it is handed over instead).
  RingBuffer<T> data_;
  IntrusiveList<SendWaiter, &SendWaiter::hook> send_waiters_;           // FIFO by send() time
  IntrusiveList<ReceiveWaiter, &ReceiveWaiter::hook> receive_waiters_;  // FIFO by receive()
  std::size_t peak_buffer_used_ = 0;
  // Invariant: open_*_channels_ count handles not closed; references_ counts handle objects
  // not moved from (closed or not), so references_ >= open_send_ + open_receive_channels_.
  // Once a side's count reaches 0 it stays 0 (clone() needs an open handle).
  std::size_t open_send_channels_ = 0;
  std::size_t open_receive_channels_ = 0;
  std::size_t references_ = 0;
  std::uint64_t next_handle_ = 0;  // handle ids, so close() can find its own blocked tasks
};

}  // namespace internal
}  // namespace trellis
