// trellis/channel/internal/memory_channel_handle.h — one handle's hold on a memory channel's
// state: the reference that keeps the state alive, the handle's id, and whether it is closed.
// The lifecycle that MemorySendChannel and MemoryReceiveChannel share (move, clone, close,
// destroy); each wraps one of these for its side. Internal.
//
// A handle is open, closed (still holding its reference: statistics() works) or moved from
// (holding nothing; every use but destruction throws ClosedResourceError). Not thread-safe.
#pragma once

#include <cstdint>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/channel/internal/memory_channel_state.h"
#include "trellis/core/errors.h"

namespace trellis::internal {

enum class ChannelSide { kSend, kReceive };

template <class T, ChannelSide side>
class MemoryChannelHandle {
 public:
  // Opens a new handle on `state`'s side `side`.
  explicit MemoryChannelHandle(MemoryChannelState<T>& state) noexcept
      : state_(&state), id_(open_on(state)) {}
  MemoryChannelHandle(MemoryChannelHandle&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)), id_(other.id_), closed_(other.closed_) {}
  MemoryChannelHandle& operator=(MemoryChannelHandle&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
      id_ = other.id_;
      closed_ = other.closed_;
    }
    return *this;
  }
  ~MemoryChannelHandle() { reset(); }

  // The state, for an operation through this handle. Throws ClosedResourceError if the
  // handle is closed or moved from.
  MemoryChannelState<T>& open_state() const {
    if (state_ == nullptr || closed_) {
      throw ClosedResourceError(side == ChannelSide::kSend
                                    ? "this memory send channel was closed"
                                    : "this memory receive channel was closed");
    }
    return *state_;
  }

  // Identifies the tasks blocked through this handle, for close().
  std::uint64_t id() const noexcept { return id_; }

  // Idempotent; a moved-from handle has nothing to close.
  void close() noexcept {
    if (state_ == nullptr || closed_) return;
    closed_ = true;
    if constexpr (side == ChannelSide::kSend) {
      state_->close_send_handle(id_);
    } else {
      state_->close_receive_handle(id_);
    }
  }

  // Works on a closed handle; ClosedResourceError if moved from.
  MemoryChannelStatistics statistics() const {
    if (state_ == nullptr) throw ClosedResourceError("moved-from memory channel handle");
    return state_->statistics();
  }

 private:
  static std::uint64_t open_on(MemoryChannelState<T>& state) noexcept {
    if constexpr (side == ChannelSide::kSend) {
      return state.open_send_handle();
    } else {
      return state.open_receive_handle();
    }
  }

  // Closes the handle and lets go of its reference (the last one deletes the state).
  void reset() noexcept {
    if (state_ == nullptr) return;
    close();
    TRELLIS_ASSERT(closed_);
    std::exchange(state_, nullptr)->release();
  }

  // Invariant: state_ == nullptr iff moved from; otherwise this handle holds one reference,
  // and is counted in the state's open handles of `side` unless closed_.
  MemoryChannelState<T>* state_ = nullptr;
  std::uint64_t id_ = 0;
  bool closed_ = false;
};

}  // namespace trellis::internal
