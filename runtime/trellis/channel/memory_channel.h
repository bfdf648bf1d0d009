// trellis/channel/memory_channel.h — memory channels: passing values between tasks of one run
// (Trio's trio.open_memory_channel, MemorySendChannel, MemoryReceiveChannel).
//
//   auto [tx, rx] = trellis::open_memory_channel<std::string>(0);  // 0: rendezvous
//   trellis::open_nursery([&](trellis::Nursery& nursery) {
//     nursery.start_soon([tx = std::move(tx)]() mutable {  // this task owns the send handle;
//       tx.send("hello");                                  // its destructor closes it
//       tx.send("world");
//     });
//     for (std::string& s : rx) std::puts(s.c_str());  // until every sender has closed
//   });
//
// A channel is a FIFO buffer of at most max_buffer_size values (0: every send waits for a
// receiver; kUnbounded: send never blocks) with any number of send and receive handles.
// clone() makes another handle on the same side, so several producers (or consumers) each
// own one; a value goes to exactly one receiver. Closing handles is how the channel ends:
//   - once every send handle is closed, receive() drains the buffer, then throws EndOfChannel
//     (and a range-for over the receive handle stops);
//   - once every receive handle is closed, send() throws BrokenResourceError and the buffered
//     values are dropped;
//   - using a handle after closing it throws ClosedResourceError, and tasks blocked in
//     send()/receive() through that very handle are woken with ClosedResourceError.
// Blocked senders and receivers are served first come, first served, and a value sent to a
// waiting receiver is moved straight into it (it never waits in the buffer).
//
// Handles are move-only. The destructor closes the handle (RAII), so a task that owns a
// handle closes it when it exits, however it exits. A moved-from handle is inert: its
// destructor does nothing and every other member throws ClosedResourceError.
//
// Cancellation is atomic, as in Trio: send() either delivers its value and returns, or throws
// (Cancelled included) with the value not delivered and destroyed with the call's argument;
// receive() either returns a value or throws with the channel unchanged. T needs only to be
// move-constructible (std::unique_ptr<U> works; no default constructor needed).
//
// Not thread-safe: use the handles of a channel from tasks of one run (open_memory_channel,
// close(), clone(), statistics() and the destructor also work outside a run when no task is
// blocked on the channel). Blocking never allocates; the buffer grows by doubling up to
// max_buffer_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>

#include "trellis/base/force_inline.h"
#include "trellis/channel/internal/memory_channel_handle.h"
#include "trellis/channel/internal/memory_channel_state.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/run.h"

namespace trellis {

// max_buffer_size meaning "no limit" (Trio's math.inf): send() never blocks.
inline constexpr std::size_t kUnbounded = SIZE_MAX;

template <class T>
class MemorySendChannel;
template <class T>
class MemoryReceiveChannel;

// Opens a channel holding at most `max_buffer_size` buffered values (0: rendezvous;
// kUnbounded: unlimited) and returns its first send and receive handles ("data flows left to
// right"). Not a checkpoint; may be called outside a run.
template <class T>
std::pair<MemorySendChannel<T>, MemoryReceiveChannel<T>> open_memory_channel(
    std::size_t max_buffer_size);

template <class T>
class MemorySendChannel {
 public:
  MemorySendChannel(MemorySendChannel&&) noexcept = default;
  MemorySendChannel& operator=(MemorySendChannel&&) noexcept = default;
  ~MemorySendChannel() = default;  // closes the handle

  // Sends `value`: hands it to the longest-waiting receiver, else buffers it, else blocks
  // until a receiver takes it. A checkpoint (cancel point first, then a schedule point even
  // when it does not block). Throws ClosedResourceError if this handle is closed (or closed
  // while blocked), BrokenResourceError if every receive handle is closed (or closes while
  // blocked), Cancelled; after any throw the value was not delivered.
  TRELLIS_FORCE_INLINE void send(T value) {
    lowlevel::fast::checkpoint_if_cancelled();
    internal::MemoryChannelState<T>& state = handle_.open_state();
    if (state.try_send(value)) {
      lowlevel::fast::cancel_shielded_checkpoint();
      return;
    }
    state.send_blocking(value, handle_.id());
  }

  // Like send() but never blocks and is not a checkpoint: throws WouldBlock if the buffer is
  // full and no receiver waits (the value is then dropped with the argument).
  void send_nowait(T value) {
    if (!handle_.open_state().try_send(value)) throw WouldBlock("memory channel buffer is full");
  }

  // Another send handle on the same channel; receivers see EndOfChannel only after every
  // clone is closed too. Throws ClosedResourceError if this handle is closed. Not a
  // checkpoint.
  MemorySendChannel clone() const { return MemorySendChannel(handle_.open_state()); }

  // Closes this handle (idempotent; not a checkpoint; never throws). Tasks blocked in send()
  // through this handle get ClosedResourceError; if it was the last open send handle, tasks
  // blocked in receive() get EndOfChannel.
  void close() noexcept { handle_.close(); }

  // The channel's statistics (works on a closed handle; ClosedResourceError if moved from).
  MemoryChannelStatistics statistics() const { return handle_.statistics(); }

 private:
  friend std::pair<MemorySendChannel<T>, MemoryReceiveChannel<T>> open_memory_channel<T>(
      std::size_t);

  explicit MemorySendChannel(internal::MemoryChannelState<T>& state) noexcept : handle_(state) {}

  internal::MemoryChannelHandle<T, internal::ChannelSide::kSend> handle_;
};

template <class T>
class MemoryReceiveChannel {
 public:
  MemoryReceiveChannel(MemoryReceiveChannel&&) noexcept = default;
  MemoryReceiveChannel& operator=(MemoryReceiveChannel&&) noexcept = default;
  ~MemoryReceiveChannel() = default;  // closes the handle

  // Receives the oldest value (buffered, or taken from the longest-blocked sender), blocking
  // until one is sent. A checkpoint (cancel point first, then a schedule point even when it
  // does not block). Throws EndOfChannel once every send handle is closed and the buffer is
  // empty, ClosedResourceError if this handle is closed (or closed while blocked), Cancelled
  // (nothing was taken).
  TRELLIS_FORCE_INLINE T receive() {
    lowlevel::fast::checkpoint_if_cancelled();
    internal::MemoryChannelState<T>& state = handle_.open_state();
    if (state.can_take()) {
      T value = state.take();
      lowlevel::fast::cancel_shielded_checkpoint();
      return value;
    }
    return state.receive_blocking(handle_.id());
  }

  // Like receive() but never blocks and is not a checkpoint: throws WouldBlock if nothing is
  // buffered, no sender waits and some send handle is open.
  T receive_nowait() {
    internal::MemoryChannelState<T>& state = handle_.open_state();
    if (!state.can_take()) throw WouldBlock("memory channel is empty");
    return state.take();
  }

  // Another receive handle on the same channel (each value still goes to one receiver);
  // senders see BrokenResourceError only after every clone is closed too. Throws
  // ClosedResourceError if this handle is closed. Not a checkpoint.
  MemoryReceiveChannel clone() const { return MemoryReceiveChannel(handle_.open_state()); }

  // Closes this handle (idempotent; not a checkpoint; never throws). Tasks blocked in
  // receive() through this handle get ClosedResourceError; if it was the last open receive
  // handle, tasks blocked in send() get BrokenResourceError and buffered values are dropped.
  void close() noexcept { handle_.close(); }

  // The channel's statistics (works on a closed handle; ClosedResourceError if moved from).
  MemoryChannelStatistics statistics() const { return handle_.statistics(); }

  // Range-for support: `for (T& value : receive_channel)` calls receive() for each value and
  // stops at EndOfChannel; any other error (Cancelled, ClosedResourceError) propagates.
  // begin() receives the first value. An input iterator: one pass.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    T& operator*() const { return *value_; }
    T* operator->() const { return &*value_; }
    TRELLIS_FORCE_INLINE iterator& operator++() {
      fetch();
      return *this;
    }
    TRELLIS_FORCE_INLINE void operator++(int) { fetch(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.value_.has_value();
    }

   private:
    friend class MemoryReceiveChannel;
    explicit iterator(MemoryReceiveChannel& channel) : channel_(&channel) { fetch(); }
    TRELLIS_FORCE_INLINE void fetch() {
      value_.reset();
      try {
        value_.emplace(channel_->receive());
      } catch (const EndOfChannel&) {
        // The end: value_ stays empty.
      }
    }

    MemoryReceiveChannel* channel_;
    mutable std::optional<T> value_;  // empty: at the end
  };
  iterator begin() { return iterator(*this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend std::pair<MemorySendChannel<T>, MemoryReceiveChannel<T>> open_memory_channel<T>(
      std::size_t);

  explicit MemoryReceiveChannel(internal::MemoryChannelState<T>& state) noexcept : handle_(state) {}

  internal::MemoryChannelHandle<T, internal::ChannelSide::kReceive> handle_;
};

template <class T>
std::pair<MemorySendChannel<T>, MemoryReceiveChannel<T>> open_memory_channel(
    std::size_t max_buffer_size) {
  auto* state = new internal::MemoryChannelState<T>(max_buffer_size);
  return {MemorySendChannel<T>(*state), MemoryReceiveChannel<T>(*state)};
}

}  // namespace trellis
