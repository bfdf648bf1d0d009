// trellis/actor/internal/channel.h — one actor-protocol connection (either side).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "trellis/io/socket_stream.h"
#include "trellis/sync/lock.h"
#include "trellis/to_process/frame.h"

namespace trellis::actor::internal {

class Channel {
 public:
  static constexpr std::size_t kReadChunk = 65536;
  explicit Channel(std::unique_ptr<SocketStream> stream);

  // Sends one whole frame, shielded (a frame is never cut by a cancellation) and serialized
  // with other senders. Throws BrokenResourceError / ClosedResourceError.
  void send(std::span<const char> frame);
  // The next frame; nullopt at end of stream. Throws to_process::FrameError (malformed, or the
  // stream ended inside a frame), BrokenResourceError, ClosedResourceError, Cancelled. One
  // receiving task at a time.
  std::optional<to_process::RawFrame> receive();
  // Closes the stream (a task blocked in receive gets ClosedResourceError). Idempotent.
  void close() noexcept;
  bool closed() const noexcept { return closed_; }

 private:
  std::unique_ptr<SocketStream> stream_;
  to_process::RawFrameReader reader_;
  std::vector<std::byte> buffer_;  // on the heap: tasks have small stacks
  Lock send_lock_;
  bool closed_ = false;
};

}  // namespace trellis::actor::internal
