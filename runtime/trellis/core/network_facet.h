// trellis/core/network_facet.h — the Backend facet for networking: sockets and names.
//
// Syscall-shaped and errno-exact, so the simulator can stand behind the same calls: every
// call is nonblocking and returns the errno the kernel would (EAGAIN, EINPROGRESS,
// ECONNREFUSED...), except resolve(), which blocks the calling task. Sockets are IoHandles:
// wait on them and close them through the IoFacet. Higher layers (SocketStream,
// open_tcp_stream, serve_tcp) are written once on top of this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "trellis/core/io_facet.h"
#include "trellis/core/socket_address.h"

namespace trellis {

struct AcceptedSocket {
  IoHandle handle;
  SocketAddress peer;
};

struct ReceivedDatagram {
  std::size_t size = 0;
  SocketAddress from;
};

class NetworkFacet {
 public:
  virtual ~NetworkFacet() = default;

  // socket(2): domain AF_INET/AF_INET6/AF_UNIX, type SOCK_STREAM/SOCK_DGRAM. The handle is
  // nonblocking and close-on-exec.
  virtual IoResult<IoHandle> socket(int domain, int type, int protocol) = 0;
  virtual int bind(IoHandle socket, const SocketAddress& address) = 0;
  virtual int listen(IoHandle socket, int backlog) = 0;
  // EAGAIN when no connection is pending. The accepted handle is nonblocking, close-on-exec.
  virtual IoResult<AcceptedSocket> accept(IoHandle socket) = 0;
  // EINPROGRESS: wait_writable, then socket_error() says how it ended.
  virtual int connect(IoHandle socket, const SocketAddress& address) = 0;
  // getsockopt(SO_ERROR): the pending error (0 if none), cleared by reading it.
  virtual IoResult<int> socket_error(IoHandle socket) = 0;
  // Stream sockets: as IoFacet::read/write (send never raises SIGPIPE).
  virtual IoResult<std::size_t> send(IoHandle socket, const void* data, std::size_t size) = 0;
  virtual IoResult<std::size_t> recv(IoHandle socket, void* buffer, std::size_t size) = 0;
  // Datagram sockets.
  virtual IoResult<std::size_t> send_to(IoHandle socket, const void* data, std::size_t size,
                                        const SocketAddress& to) = 0;
  virtual IoResult<ReceivedDatagram> receive_from(IoHandle socket, void* buffer,
                                                  std::size_t size) = 0;
  // shutdown(2): SHUT_RD, SHUT_WR, SHUT_RDWR.
  virtual int shutdown(IoHandle socket, int how) = 0;
  // setsockopt/getsockopt with an int value (SO_REUSEADDR, TCP_NODELAY, IPV6_V6ONLY...).
  virtual int set_option(IoHandle socket, int level, int name, int value) = 0;
  virtual IoResult<int> get_option(IoHandle socket, int level, int name) = 0;
  virtual IoResult<SocketAddress> local_address(IoHandle socket) = 0;
  virtual IoResult<SocketAddress> peer_address(IoHandle socket) = 0;

  // getaddrinfo: the addresses host:port resolves to for the given family (AF_UNSPEC for
  // all) and socket type, in the resolver's order. Blocks the calling task (the real backend
  // resolves on a worker thread); cancellable (the lookup is abandoned). The error is a
  // getaddrinfo EAI_* code (negative) or an errno.
  virtual IoResult<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port,
                                                       int family, int type) = 0;
};

}  // namespace trellis
