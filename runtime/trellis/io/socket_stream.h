// trellis/io/socket_stream.h — SocketStream (a HalfCloseableStream over a connected stream
// socket: TCP or unix) and SocketListener (a Listener<SocketStream> over a listening socket),
// as Trio's trio.SocketStream / trio.SocketListener.
//
//   std::unique_ptr<trellis::SocketStream> stream = listener.accept();   // blocks
//   std::array<std::byte, 4096> buffer;
//   while (std::size_t n = stream->receive_some(buffer)) stream->send_all({buffer.data(), n});
//   stream->send_eof();
//
// Errors, as Trio: an errno from send/recv becomes BrokenResourceError (ECONNRESET, EPIPE...,
// the message names the errno), except EBADF/ENOTSOCK, which mean ClosedResourceError. Two
// tasks sending at once (or receiving at once) get BusyResourceError (Trio's
// ConflictDetector). Everything here runs through the run's IoFacet/NetworkFacet only.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "trellis/core/socket_address.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/io/socket.h"
#include "trellis/io/stream.h"

namespace trellis {

class SocketStream final : public HalfCloseableStream {
 public:
  // Default size of a receive when the caller has no better idea (Trio's 64 KiB).
  static constexpr std::size_t kReceiveSizeDefault = 65536;

  // Takes a connected SOCK_STREAM socket. Sets TCP_NODELAY (and TCP_NOTSENT_LOWAT = 16 KiB)
  // where the socket supports them, as Trio. Throws std::invalid_argument if the socket is
  // not open or not SOCK_STREAM. Not a checkpoint.
  explicit SocketStream(Socket socket);
  // Movable (the moved-from stream has no socket: it acts closed); not copyable. Moving a
  // stream that a task is using is a bug (asserted).
  SocketStream(SocketStream&& other) noexcept;
  SocketStream& operator=(SocketStream&& other) noexcept;

  // HalfCloseableStream (contracts in io/stream.h). All are checkpoints.
  // send_all after send_eof: ClosedResourceError("can't send data after sending EOF").
  void send_all(std::span<const std::byte> data) override;
  void wait_send_all_might_not_block() override;
  std::size_t receive_some(std::span<std::byte> buffer) override;
  // shutdown(SHUT_WR) once; idempotent.
  void send_eof() override;
  // Closes the socket (waking blocked tasks with ClosedResourceError), then checkpoints.
  void close() override;

  // The underlying socket, for options and addresses (do not close it behind our back).
  Socket& socket() noexcept { return socket_; }

 private:
  Socket socket_;
  // Held by the task inside send_all / wait_send_all_might_not_block / send_eof, and by the
  // one inside receive_some (Trio's two ConflictDetectors).
  ConflictDetector send_conflict_{"another task is using this stream for send"};
  ConflictDetector receive_conflict_{"another task is using this stream for receive"};
  // Invariant: once true, the write side is shut down and stays so.
  bool eof_sent_ = false;
};

class SocketListener final : public Listener<SocketStream> {
 public:
  // Takes a listening SOCK_STREAM socket. Throws std::invalid_argument if it is not open or
  // not SOCK_STREAM (one that is not listening makes accept() throw OSError EINVAL).
  explicit SocketListener(Socket socket);

  // Blocks until a connection arrives. A checkpoint. Transient errors of the accepted
  // connection (ECONNABORTED, EPROTO, ENETDOWN... Trio's list) are skipped silently.
  // Throws ClosedResourceError (closed, also while waiting), BusyResourceError (another task
  // is accepting), OSError for the rest (EMFILE, ENFILE, ENOBUFS, ENOMEM: serve_listeners
  // sleeps and retries on those).
  std::unique_ptr<SocketStream> accept() override;
  // Closes the listening socket, then checkpoints.
  void close() override;

  Socket& socket() noexcept { return socket_; }
  // The bound address (getsockname). Not a checkpoint. Throws OSError/ClosedResourceError.
  SocketAddress local_address() const { return socket_.local_address(); }

 private:
  Socket socket_;
  // Held by the task inside accept().
  ConflictDetector accept_conflict_{"another task is already accepting on this listener"};
};

}  // namespace trellis
