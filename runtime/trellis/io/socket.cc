#include "trellis/io/socket.h"

#include <sys/socket.h>

#include <string>

#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"

namespace trellis {

std::string family_name(int domain) {
  switch (domain) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_UNIX:
      return "AF_UNIX";
    default:
      return std::to_string(domain);
  }
}

std::string socket_type_name(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "SOCK_STREAM";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    default:
      return std::to_string(type);
  }
}

Socket::Socket(IoHandle handle)
    : handle_(handle), io_(&lowlevel::current_io()), network_(&lowlevel::current_network()) {}

Socket Socket::open(int domain, int type, int protocol) {
  NetworkFacet& network = lowlevel::current_network();
  IoResult<IoHandle> made = network.socket(domain, type, protocol);
  if (!made.ok()) {
    throw OSError(made.error,
                  "socket(" + family_name(domain) + ", " + socket_type_name(type) + ")");
  }
  return Socket(made.value);
}

Socket::Socket(Socket&& other) noexcept
    : handle_(std::exchange(other.handle_, IoHandle{})), io_(other.io_), network_(other.network_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, IoHandle{});
    io_ = other.io_;
    network_ = other.network_;
  }
  return *this;
}

Socket::~Socket() {
  close();
}

void Socket::close() noexcept {
  if (!handle_.valid()) return;
  // The handle is released whatever close reports (as close(2) on Linux).
  io_->close(std::exchange(handle_, IoHandle{}));
}

void Socket::require_open(const char* operation) const {
  if (!handle_.valid()) {
    throw ClosedResourceError(std::string(operation) + " on a closed socket");
  }
}

void Socket::bind(const SocketAddress& address) {
  require_open("bind");
  if (const int error = network_->bind(handle_, address)) {
    throw OSError(error, "bind to " + address.to_string());
  }
}

void Socket::listen(int backlog) {
  require_open("listen");
  if (const int error = network_->listen(handle_, backlog)) {
    throw OSError(error, "listen on " + local_address().to_string());
  }
}

void Socket::set_option(int level, int name, int value) {
  require_open("setsockopt");
  if (const int error = network_->set_option(handle_, level, name, value)) {
    throw OSError(error, "setsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")");
  }
}

int Socket::get_option(int level, int name) const {
  require_open("getsockopt");
  IoResult<int> got = network_->get_option(handle_, level, name);
  if (!got.ok()) {
    throw OSError(got.error,
                  "getsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")");
  }
  return got.value;
}

void Socket::shutdown(int how) {
  require_open("shutdown");
  if (const int error = network_->shutdown(handle_, how)) {
    throw OSError(error, "shutdown(" + std::to_string(how) + ")");
  }
}

SocketAddress Socket::local_address() const {
  require_open("getsockname");
  IoResult<SocketAddress> got = network_->local_address(handle_);
  if (!got.ok()) throw OSError(got.error, "getsockname");
  return got.value;
}

SocketAddress Socket::peer_address() const {
  require_open("getpeername");
  IoResult<SocketAddress> got = network_->peer_address(handle_);
  if (!got.ok()) throw OSError(got.error, "getpeername");
  return got.value;
}

void Socket::connect(const SocketAddress& address) {
  require_open("connect");
  checkpoint_if_cancelled();
  int error = network_->connect(handle_, address);
  if (error == 0) {
    lowlevel::cancel_shielded_checkpoint();
    return;
  }
  if (error == EINPROGRESS || error == EAGAIN) {
    try {
      io_->wait_writable(handle_);
    } catch (...) {
      // Cancelled (or closed) mid-connect: the socket's state is unknown; close it.
      close();
      throw;
    }
    IoResult<int> pending = network_->socket_error(handle_);
    error = pending.ok() ? pending.value : pending.error;
  }
  if (error != 0) throw OSError(error, "connect to " + address.to_string());
}

}  // namespace trellis
