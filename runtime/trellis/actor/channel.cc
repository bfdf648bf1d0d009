// trellis/actor/channel.cc — see internal/channel.h.

#include <cerrno>
#include <mutex>
#include <string>

#include "trellis/actor/internal/channel.h"
#include "trellis/actor/protocol.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"

namespace trellis::actor::internal {
namespace {

// As SocketStream reports a failed recv.
[[noreturn]] void throw_stream_error(int error) {
  if (error == EBADF || error == ENOTSOCK) {
    throw ClosedResourceError("socket was already closed (recv)");
  }
  throw BrokenResourceError(
      "socket connection broken: recv: " + OSError(error, "recv").code().message() + " (" +
      errno_name(error) + ")");
}

}  // namespace

Channel::Channel(std::unique_ptr<SocketStream> stream)
    : stream_(std::move(stream)), reader_(protocol::kActorFrameFormat), buffer_(kReadChunk) {}

void Channel::send(std::span<const char> frame) {
  if (try_send_at_once(frame)) {
    lowlevel::cancel_shielded_checkpoint();
    return;
  }
  send_slowly(frame);
}

void Channel::send_without_yield(std::span<const char> frame) {
  if (!try_send_at_once(frame)) send_slowly(frame);
}

bool Channel::try_send_at_once(std::span<const char> frame) {
  if (closed_) throw ClosedResourceError("the actor channel is closed");
  Socket& socket = stream_->socket();
  if (!socket.is_open() || !send_lock_.try_lock()) return false;
  std::lock_guard<Lock> hold(send_lock_, std::adopt_lock);
  // A partial send would leave the rest to send_all, outside this lock: send it here then.
  const IoResult<std::size_t> sent =
      socket.network().send(socket.handle(), frame.data(), frame.size());
  if (!sent.ok()) return false;  // EAGAIN, or an error send_slowly reports as SocketStream does
  if (sent.value == frame.size()) return true;
  CancelScope shield(kNoDeadline, true);
  shield.run([&] { stream_->send_all(std::as_bytes(frame.subspan(sent.value))); });
  return true;
}

void Channel::send_slowly(std::span<const char> frame) {
  if (closed_) throw ClosedResourceError("the actor channel is closed");
  CancelScope shield(kNoDeadline, true);
  shield.run([&] {
    std::lock_guard<Lock> hold(send_lock_);
    stream_->send_all(std::as_bytes(frame));
  });
}

std::optional<to_process::RawFrame> Channel::receive() {
  std::optional<to_process::RawFrameView> view = receive_view();
  if (!view) return std::nullopt;
  return to_process::RawFrame{
      view->kind, view->flags, {view->payload.begin(), view->payload.end()}};
}

std::optional<to_process::RawFrameView> Channel::receive_view() {
  for (;;) {
    if (std::optional<to_process::RawFrameView> frame = reader_.next_view()) {
      ++frames_from_read_;
      return frame;
    }
    if (closed_) throw ClosedResourceError("the actor channel is closed");
    // Inside a frame, read at once: its rest may be there, or the end of the stream (reported
    // as a cut frame rather than losing the race to whatever else the peer's end wakes). After
    // several frames in one read too: the peer streams, its next bytes are likely there
    // already (waiting first would cost a loop pass). One frame: an exchange, wait first.
    if (reader_.buffered() != 0 || frames_from_read_ > 1) drained_ = false;
    frames_from_read_ = 0;
    std::size_t got = 0;
    try {
      got = read_some();
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

std::size_t Channel::read_some() {
  Socket& socket = stream_->socket();
  if (!drained_ || !socket.is_open()) {
    const std::size_t got = stream_->receive_some(buffer_);
    drained_ = got > 0 && got < buffer_.size();  // (no hint: receive_some yielded since)
    return got;
  }
  // The last read was short: the kernel had nothing more then. Wait before reading instead of
  // first trying a read that fails with EAGAIN (a system call per message).
  socket.io().wait_readable(socket.handle());  // the checkpoint
  const IoResult<std::size_t> got =
      socket.network().recv(socket.handle(), buffer_.data(), buffer_.size());
  if (got.error == EAGAIN) {  // woken spuriously: the usual way
    drained_ = false;
    return read_some();
  }
  if (!got.ok()) throw_stream_error(got.error);
  note_read(socket, got.value);  // right after the read: no edge was dispatched in between
  return got.value;
}

void Channel::note_read(Socket& socket, std::size_t got) noexcept {
  // A short read of a stream socket drained it: actors never send urgent data nor pass
  // credentials or descriptors, the cases where a read stops short of the end. The hint must
  // follow the read with no schedule point between (a poll there could dispatch the edge of
  // newer bytes, which the hint would then cancel: a lost wake-up).
  drained_ = got > 0 && got < buffer_.size();
  if (drained_) socket.io().note_drained(socket.handle());
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
