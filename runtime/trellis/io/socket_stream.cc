#include "trellis/io/socket_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"

namespace trellis {
namespace {

// Trio's _translate_socket_errors_to_stream_errors.
[[noreturn]] void throw_stream_error(int error, const char* operation) {
  if (error == EBADF || error == ENOTSOCK) {
    throw ClosedResourceError(std::string("socket was already closed (") + operation + ")");
  }
  throw BrokenResourceError(std::string("socket connection broken: ") + operation + ": " +
                            OSError(error, operation).code().message() + " (" + errno_name(error) +
                            ")");
}

// Trio's _ignorable_accept_errnos: problems of one pending connection, not of the listener.
bool ignorable_accept_error(int error) {
  switch (error) {
    case ECONNABORTED:
    case EPERM:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ENOSR:
    case ESOCKTNOSUPPORT:
    case EPROTONOSUPPORT:
    case ETIMEDOUT:
    case ECONNRESET:
      return true;
    default:
      return false;
  }
}

void require_stream_socket(const Socket& socket, const char* what) {
  if (!socket.is_open()) throw std::invalid_argument(std::string(what) + " needs an open socket");
  if (socket.get_option(SOL_SOCKET, SO_TYPE) != SOCK_STREAM) {
    throw std::invalid_argument(std::string(what) + " requires a SOCK_STREAM socket");
  }
}

}  // namespace

// ---- SocketStream ----------------------------------------------------------------------------

SocketStream::SocketStream(Socket socket) : socket_(std::move(socket)) {
  require_stream_socket(socket_, "SocketStream");
  // Not TCP (a unix socket): these fail, which is fine (Trio ignores the errors as well).
  socket_.network().set_option(socket_.handle(), IPPROTO_TCP, TCP_NODELAY, 1);
  socket_.network().set_option(socket_.handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, 16 * 1024);
}

SocketStream::SocketStream(SocketStream&& other) noexcept
    : socket_(std::move(other.socket_)), eof_sent_(other.eof_sent_) {
  TRELLIS_ASSERT(!other.send_conflict_.held() && !other.receive_conflict_.held());
}

SocketStream& SocketStream::operator=(SocketStream&& other) noexcept {
  TRELLIS_ASSERT(!send_conflict_.held() && !receive_conflict_.held());
  TRELLIS_ASSERT(!other.send_conflict_.held() && !other.receive_conflict_.held());
  socket_ = std::move(other.socket_);
  eof_sent_ = other.eof_sent_;
  return *this;
}

void SocketStream::send_all(std::span<const std::byte> data) {
  ConflictDetector::Guard guard(send_conflict_);
  if (eof_sent_ && socket_.is_open()) {
    throw ClosedResourceError("can't send data after sending EOF");
  }
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  if (data.empty()) {
    checkpoint();
    return;
  }
  NetworkFacet& network = socket_.network();
  std::size_t total = 0;
  while (total < data.size()) {
    IoResult<std::size_t> sent = socket_.io_call(true, [&] {
      return network.send(socket_.handle(), data.data() + total, data.size() - total);
    });
    if (!sent.ok()) throw_stream_error(sent.error, "send");
    total += sent.value;
  }
}

void SocketStream::wait_send_all_might_not_block() {
  ConflictDetector::Guard guard(send_conflict_);
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  checkpoint();
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  socket_.io().wait_writable(socket_.handle());
}

std::size_t SocketStream::receive_some(std::span<std::byte> buffer) {
  if (buffer.empty()) throw std::invalid_argument("receive_some: the buffer must not be empty");
  ConflictDetector::Guard guard(receive_conflict_);
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  NetworkFacet& network = socket_.network();
  IoResult<std::size_t> got = socket_.io_call(
      false, [&] { return network.recv(socket_.handle(), buffer.data(), buffer.size()); });
  if (!got.ok()) throw_stream_error(got.error, "recv");
  return got.value;
}

void SocketStream::send_eof() {
  ConflictDetector::Guard guard(send_conflict_);
  checkpoint();
  if (eof_sent_ && socket_.is_open()) return;
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  if (const int error = socket_.network().shutdown(socket_.handle(), SHUT_WR)) {
    throw_stream_error(error, "shutdown(SHUT_WR)");
  }
  eof_sent_ = true;
}

void SocketStream::close() {
  socket_.close();
  checkpoint();
}

// ---- SocketListener --------------------------------------------------------------------------

SocketListener::SocketListener(Socket socket) : socket_(std::move(socket)) {
  // Trio also checks SO_ACCEPTCONN; the simulator does not model that option, so a socket
  // that is not listening is reported by accept() instead (EINVAL).
  require_stream_socket(socket_, "SocketListener");
}

std::unique_ptr<SocketStream> SocketListener::accept() {
  ConflictDetector::Guard guard(accept_conflict_);
  for (;;) {
    if (!socket_.is_open()) throw ClosedResourceError("listener was already closed");
    NetworkFacet& network = socket_.network();
    IoResult<AcceptedSocket> accepted =
        socket_.io_call(false, [&] { return network.accept(socket_.handle()); });
    if (accepted.ok()) return std::make_unique<SocketStream>(Socket(accepted.value.handle));
    if (accepted.error == EBADF || accepted.error == ENOTSOCK) {
      throw ClosedResourceError("listener was already closed");
    }
    if (!ignorable_accept_error(accepted.error)) {
      throw OSError(accepted.error, "accept on " + socket_.local_address().to_string());
    }
  }
}

void SocketListener::close() {
  socket_.close();
  checkpoint();
}

}  // namespace trellis
