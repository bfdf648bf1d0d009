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
  // with other senders. A schedule point, never a cancel point. When no other task is sending
  // and the kernel takes the frame at once (the usual case) that is one send system call and
  // one yield. Throws BrokenResourceError / ClosedResourceError.
  void send(std::span<const char> frame);
  // As send(), but in that usual case without the yield: for a caller whose own operation has
  // its schedule point elsewhere (a call that next waits for its answer; the answer a task
  // sends as it ends). Each yield costs the loop a pass, and a pass an epoll wait.
  void send_without_yield(std::span<const char> frame);
  // The next frame; nullopt at end of stream. Throws to_process::FrameError (malformed, or the
  // stream ended inside a frame), BrokenResourceError, ClosedResourceError, Cancelled. One
  // receiving task at a time.
  std::optional<to_process::RawFrame> receive();
  // The same in place: valid until the next receive (the receiving task's own: no other task
  // receives on this channel).
  std::optional<to_process::RawFrameView> receive_view();
  // Closes the stream (a task blocked in receive gets ClosedResourceError). Idempotent.
  void close() noexcept;
  bool closed() const noexcept { return closed_; }

 private:
  // With no other task sending, one nonblocking send; true if it took the frame (what a
  // partial send left is sent before returning, with yields). False: nothing was sent (the
  // kernel's buffer is full, the socket failed, or another task is sending).
  bool try_send_at_once(std::span<const char> frame);
  // receive_some into buffer_; after a short read, waiting first (see drained_).
  std::size_t read_some();
  // Right after a read of `got` bytes (no schedule point between): sets drained_, and tells
  // the backend (IoFacet::note_drained).
  void note_read(Socket& socket, std::size_t got) noexcept;
  // Waits for the other senders, then sends the whole frame (SocketStream::send_all).
  void send_slowly(std::span<const char> frame);

  std::unique_ptr<SocketStream> stream_;
  to_process::RawFrameReader reader_;
  std::vector<std::byte> buffer_;  // on the heap: tasks have small stacks
  Lock send_lock_;
  bool closed_ = false;
  // The last read was short (the socket had no more bytes then) and brought one whole frame:
  // the next one waits for readability before its system call, instead of trying first and
  // failing with EAGAIN.
  bool drained_ = false;
  std::size_t frames_from_read_ = 0;  // frames receive() returned since the last read
};

}  // namespace trellis::actor::internal
