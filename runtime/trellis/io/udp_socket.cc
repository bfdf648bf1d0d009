#include "trellis/io/udp_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"

namespace trellis {

UdpSocket::UdpSocket(int family) : socket_(Socket::open(family, SOCK_DGRAM)) {}

UdpSocket UdpSocket::bind(const SocketAddress& address) {
  Socket socket = Socket::open(address.family(), SOCK_DGRAM);
  if (address.family() == AF_INET6) socket.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
  socket.bind(address);
  return UdpSocket(std::move(socket));
}

void UdpSocket::send_to(std::span<const std::byte> data, const SocketAddress& to) {
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  NetworkFacet& network = socket_.network();
  IoResult<std::size_t> sent = socket_.io_call(
      true, [&] { return network.send_to(socket_.handle(), data.data(), data.size(), to); });
  if (!sent.ok()) {
    if (sent.error == EBADF) throw ClosedResourceError("socket was already closed");
    throw OSError(sent.error, "sendto " + to.to_string());
  }
}

Datagram UdpSocket::receive_from(std::span<std::byte> buffer) {
  if (buffer.empty()) throw std::invalid_argument("receive_from: the buffer must not be empty");
  if (!socket_.is_open()) throw ClosedResourceError("socket was already closed");
  NetworkFacet& network = socket_.network();
  IoResult<ReceivedDatagram> got = socket_.io_call(
      false, [&] { return network.receive_from(socket_.handle(), buffer.data(), buffer.size()); });
  if (!got.ok()) {
    if (got.error == EBADF) throw ClosedResourceError("socket was already closed");
    throw OSError(got.error, "recvfrom on " + socket_.local_address().to_string());
  }
  return Datagram{got.value.size, std::move(got.value.from)};
}

void UdpSocket::close() {
  socket_.close();
  checkpoint();
}

}  // namespace trellis
