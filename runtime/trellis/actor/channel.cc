// trellis/actor/channel.cc — see internal/channel.h.

#include <mutex>

#include "trellis/actor/internal/channel.h"
#include "trellis/actor/protocol.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"

namespace trellis::actor::internal {

Channel::Channel(std::unique_ptr<SocketStream> stream)
    : stream_(std::move(stream)), reader_(protocol::kActorFrameFormat), buffer_(kReadChunk) {}

void Channel::send(std::span<const char> frame) {
  if (closed_) throw ClosedResourceError("the actor channel is closed");
  CancelScope shield(kNoDeadline, true);
  shield.run([&] {
    std::lock_guard<Lock> hold(send_lock_);
    stream_->send_all(std::as_bytes(frame));
  });
}

std::optional<to_process::RawFrame> Channel::receive() {
  for (;;) {
    if (std::optional<to_process::RawFrame> frame = reader_.next()) return frame;
    if (closed_) throw ClosedResourceError("the actor channel is closed");
    std::size_t got = 0;
    try {
      got = stream_->receive_some(buffer_);
    } catch (const BrokenResourceError& e) {
      if (reader_.buffered() == 0) throw;
      throw to_process::FrameError("the peer's connection broke inside a frame (" +
                                   std::to_string(reader_.buffered()) +
                                   " bytes of it): " + e.what());
    }
    if (got == 0) {
      if (reader_.buffered() != 0) {
        throw to_process::FrameError("the peer's connection ended inside a frame (" +
                                     std::to_string(reader_.buffered()) + " bytes of it)");
      }
      return std::nullopt;
    }
    reader_.feed(std::span<const char>(reinterpret_cast<const char*>(buffer_.data()), got));
  }
}

void Channel::close() noexcept {
  if (closed_) return;
  closed_ = true;
  try {
    CancelScope shield(kNoDeadline, true);
    shield.run([&] { stream_->close(); });
  } catch (...) {  // closing a socket does not fail in a way we could act on
  }
}

}  // namespace trellis::actor::internal
