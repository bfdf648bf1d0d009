// trellis/io/socket.h — Socket: an owned socket handle of the run's network facet, with the
// calls of trio.socket that the high-level networking is built from.
//
// Written only against lowlevel::current_io() / current_network(), so it runs the same on the
// epoll backend and in the simulator. Errors the kernel (or simulator) reports become OSError
// naming the operation and the address ("connect to 127.0.0.1:9 (ECONNREFUSED)"); EAGAIN
// means "park and retry" and never escapes.
//
//   trellis::Socket s = trellis::Socket::open(AF_INET, SOCK_STREAM);
//   s.connect(*trellis::SocketAddress::parse("127.0.0.1", 8080));   // blocks this task
//   trellis::SocketStream stream(std::move(s));
//
// A Socket belongs to the run that created it: use it only from that run's tasks, and let it
// go (close or destroy it) before the run ends.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

#include "trellis/core/io_facet.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/run.h"
#include "trellis/core/socket_address.h"
#include "trellis/io/nonblocking_call.h"

namespace trellis {

class Socket {
 public:
  // No handle (is_open() is false).
  Socket() = default;
  // Takes ownership of a handle of the current run's network facet. Must run inside a run.
  explicit Socket(IoHandle handle);
  // socket(2) on the current run's network facet. Not a checkpoint. Throws OSError
  // ("socket(AF_INET6, SOCK_STREAM)"), e.g. EAFNOSUPPORT, EMFILE.
  static Socket open(int domain, int type, int protocol = 0);

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  // Closes the handle (see close()).
  ~Socket();

  IoHandle handle() const noexcept { return handle_; }
  bool is_open() const noexcept { return handle_.valid(); }
  // Gives up ownership; the caller must close the handle through the IoFacet.
  IoHandle release() noexcept { return std::exchange(handle_, IoHandle{}); }

  // Wakes every task waiting on this socket with ClosedResourceError (notify_closing), then
  // releases the handle. Idempotent. Never blocks; not a checkpoint; never throws.
  void close() noexcept;

  // Not checkpoints; throw OSError naming the call (and the address), ClosedResourceError
  // after close().
  void bind(const SocketAddress& address);
  void listen(int backlog);
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  void shutdown(int how);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;

  // Connects (stream) or sets the default peer (datagram). Blocks until the connection is
  // made or fails. A checkpoint. Throws OSError ("connect to 127.0.0.1:9 (ECONNREFUSED)").
  // If cancelled while the connection is in progress the socket is closed (its state would
  // be unknown), as in Trio.
  void connect(const SocketAddress& address);

  // nonblocking_call (io/nonblocking_call.h) on this socket's handle.
  template <class Attempt>
  auto io_call(bool for_write, Attempt attempt) -> decltype(attempt()) {
    return nonblocking_call(*io_, handle_, for_write, attempt);
  }

  IoFacet& io() const noexcept { return *io_; }
  NetworkFacet& network() const noexcept { return *network_; }

 private:
  // Throws ClosedResourceError if closed.
  void require_open(const char* operation) const;

  // Invariant: io_ and network_ are the facets of the run that created handle_ (non-null
  // whenever handle_ is valid).
  IoHandle handle_;
  IoFacet* io_ = nullptr;
  NetworkFacet* network_ = nullptr;
};

// "AF_INET", "AF_INET6", "AF_UNIX" or the number; "SOCK_STREAM", "SOCK_DGRAM" or the number.
std::string family_name(int domain);
std::string socket_type_name(int type);

}  // namespace trellis
