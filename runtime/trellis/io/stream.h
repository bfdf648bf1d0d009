// trellis/io/stream.h — the byte-stream interfaces (Trio's trio.abc): SendStream,
// ReceiveStream, Stream, HalfCloseableStream, Listener<S>.
//
// Everything that moves bytes (SocketStream, process pipes, memory streams, StapledStream,
// TLS one day) implements these, and code written against them runs over any of them. The
// conformance checks in fakes (check_one_way_stream, check_two_way_stream,
// check_half_closeable_stream) pin the contract down.
//
//   void echo(trellis::Stream& stream) {
//     std::array<std::byte, 4096> buffer;
//     while (std::size_t n = stream.receive_some(buffer)) {
//       stream.send_all(std::span(buffer).first(n));
//     }
//   }
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace trellis {

// Something that must be closed (Trio's AsyncResource). close() is idempotent; it always
// releases the resource, also when cancelled (it may then skip a graceful goodbye), and it
// is a checkpoint. After close(), every other operation throws ClosedResourceError.
// Destroying an open resource closes it without blocking.
class AsyncResource {
 public:
  virtual ~AsyncResource() = default;
  virtual void close() = 0;
};

class SendStream : public virtual AsyncResource {
 public:
  // Sends every byte of data, blocking while the stream applies backpressure. A checkpoint.
  // Throws BusyResourceError if another task is in send_all or wait_send_all_might_not_block
  // on this stream, BrokenResourceError if the stream broke (the peer went away; part of the
  // data may have been sent), ClosedResourceError if this stream was closed (also when
  // another task closes it meanwhile). If cancelled, an unknown part of data was sent and
  // the stream is unusable (later sends throw BrokenResourceError or ClosedResourceError).
  virtual void send_all(std::span<const std::byte> data) = 0;
  // Blocks until a send_all would probably not block (a hint; may return early). A
  // checkpoint. Same errors as send_all.
  virtual void wait_send_all_might_not_block() = 0;
};

class ReceiveStream : public virtual AsyncResource {
 public:
  // Waits until at least one byte is available and copies up to buffer.size() bytes into
  // buffer; returns how many. 0 means end of stream (and every later call returns 0). A
  // checkpoint. Throws std::invalid_argument if buffer is empty, BusyResourceError if another
  // task is receiving on this stream, BrokenResourceError if the stream broke,
  // ClosedResourceError if this stream was closed (also while waiting).
  virtual std::size_t receive_some(std::span<std::byte> buffer) = 0;
};

class Stream : public SendStream, public ReceiveStream {};

class HalfCloseableStream : public Stream {
 public:
  // Ends the sending direction: the peer's receive_some returns 0 once it has everything.
  // Receiving goes on. Idempotent. A checkpoint. Sending afterwards throws
  // ClosedResourceError.
  virtual void send_eof() = 0;
};

// Accepts connections, each as a stream of type S. accept() is a checkpoint; blocks until a
// connection arrives; throws ClosedResourceError if the listener is closed (also while
// waiting), BusyResourceError if another task is accepting; transient errors (EMFILE...)
// are OSError, which serve_listeners handles.
template <class S>
class Listener : public virtual AsyncResource {
 public:
  using StreamType = S;
  virtual std::unique_ptr<S> accept() = 0;
};

}  // namespace trellis
