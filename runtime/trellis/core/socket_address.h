// trellis/core/socket_address.h — SocketAddress: an IPv4, IPv6 or unix-domain address, as the
// network facet takes and returns it (a sockaddr in a value type).
//
//   SocketAddress a = SocketAddress::parse("127.0.0.1", 8080);   // or "::1", 8080
//   a.to_string();   // "127.0.0.1:8080", "[::1]:8080", "unix:/tmp/sock"
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis {

class SocketAddress {
 public:
  SocketAddress() = default;
  // From a sockaddr the kernel filled in. Throws std::invalid_argument if len is too large.
  SocketAddress(const sockaddr* address, socklen_t length);

  // A numeric IPv4 or IPv6 address and a port; nullopt if host is not a numeric address.
  static std::optional<SocketAddress> parse(std::string_view host, std::uint16_t port);
  // A unix-domain socket path (or abstract name starting with '\0'). Throws
  // std::invalid_argument if it does not fit in sun_path.
  static SocketAddress unix_path(std::string_view path);

  int family() const noexcept { return storage_.ss_family; }  // AF_INET, AF_INET6, AF_UNIX
  bool empty() const noexcept { return length_ == 0; }
  // IPv4/IPv6 only (0 otherwise).
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  // The numeric host ("10.0.0.1", "::1") or the unix path.
  std::string host() const;
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const noexcept { return length_; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

}  // namespace trellis
