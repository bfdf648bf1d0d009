#include "trellis/core/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace trellis {

SocketAddress::SocketAddress(const sockaddr* address, socklen_t length) {
  if (length > sizeof storage_) {
    throw std::invalid_argument("SocketAddress: address of " + std::to_string(length) +
                                " bytes does not fit in sockaddr_storage");
  }
  std::memcpy(&storage_, address, length);
  length_ = length;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view host, std::uint16_t port) {
  const std::string text(host);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
  }
  return std::nullopt;
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  sockaddr_un un{};
  if (path.empty() || path.size() >= sizeof un.sun_path) {
    throw std::invalid_argument("unix socket path must be 1.." +
                                std::to_string(sizeof un.sun_path - 1) + " bytes, got " +
                                std::to_string(path.size()));
  }
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                             (path[0] == '\0' ? 0 : 1));
  return SocketAddress(reinterpret_cast<const sockaddr*>(&un), length);
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string SocketAddress::host() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buffer,
                sizeof buffer);
    return buffer;
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buffer,
                sizeof buffer);
    return buffer;
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    if (length_ <= offset) return "";  // unnamed
    std::size_t size = length_ - offset;
    if (un->sun_path[0] != '\0') size = ::strnlen(un->sun_path, size);
    return std::string(un->sun_path, size);
  }
  return "";
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6: {
      // Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "[" + string.
      std::string out = "[";
      out.append(host()).append("]:").append(std::to_string(port()));
      return out;
    }
    case AF_UNIX: {
      const std::string path = host();
      std::string out = "unix:";
      if (!path.empty() && path[0] == '\0') {
        out.append("@").append(path, 1, std::string::npos);  // abstract socket
      } else {
        out.append(path);
      }
      return out;
    }
    default:
      return empty() ? "<no address>" : "<family " + std::to_string(family()) + ">";
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

}  // namespace trellis
