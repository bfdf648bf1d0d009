// trellis/io/udp_socket.h — UdpSocket: a datagram socket (IPv4, IPv6 or unix-domain
// SOCK_DGRAM) for datagram protocols: send_to / receive_from whole datagrams.
//
//   auto server = trellis::UdpSocket::bind(*trellis::SocketAddress::parse("127.0.0.1", 0));
//   std::array<std::byte, 2048> buffer;
//   trellis::Datagram got = server.receive_from(buffer);          // blocks
//   server.send_to(std::span(buffer).first(got.size), got.from);  // echo it back
//
// Written only against the run's NetworkFacet/IoFacet (the simulator can drop, duplicate and
// reorder datagrams behind the same calls).
#pragma once

#include <cstddef>
#include <span>

#include "trellis/core/socket_address.h"
#include "trellis/io/socket.h"

namespace trellis {

struct Datagram {
  std::size_t size = 0;  // bytes copied into the buffer (a longer datagram was truncated)
  SocketAddress from;
};

class UdpSocket {
 public:
  // An unbound datagram socket of the given family (AF_INET, AF_INET6, AF_UNIX); the kernel
  // binds it to an ephemeral port on the first send_to. Throws OSError.
  explicit UdpSocket(int family);
  // A datagram socket bound to address (port 0: the kernel picks one). IPv6 sockets get
  // IPV6_V6ONLY. Throws OSError ("bind to 127.0.0.1:53 (EACCES)"). Not a checkpoint.
  static UdpSocket bind(const SocketAddress& address);

  // Sends one datagram. Blocks while the socket's send buffer is full. A checkpoint.
  // Throws OSError ("sendto 10.0.0.1:53 (EMSGSIZE)"; ECONNREFUSED may report an ICMP error
  // from an earlier datagram), ClosedResourceError, BusyResourceError (another task sends).
  void send_to(std::span<const std::byte> data, const SocketAddress& to);
  // Receives one datagram into buffer (truncated to buffer.size()). Blocks until one
  // arrives. A checkpoint. Throws std::invalid_argument (empty buffer), OSError,
  // ClosedResourceError (closed, also while waiting), BusyResourceError (another receiver).
  Datagram receive_from(std::span<std::byte> buffer);

  SocketAddress local_address() const { return socket_.local_address(); }
  // Wakes blocked tasks with ClosedResourceError and releases the socket, then checkpoints.
  void close();
  Socket& socket() noexcept { return socket_; }

 private:
  explicit UdpSocket(Socket socket) : socket_(std::move(socket)) {}

  Socket socket_;
};

}  // namespace trellis
