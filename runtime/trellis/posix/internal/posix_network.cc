#include "trellis/posix/internal/posix_network.h"

#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <exception>
#include <optional>
#include <system_error>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/lowlevel.h"

namespace trellis::posix::internal {
namespace {

bool bad(IoHandle handle) {
  return handle.value < 0 || handle.value > INT_MAX;
}

int fd_of(IoHandle handle) {
  return static_cast<int>(handle.value);
}

template <class T>
IoResult<T> failure(int error) {
  IoResult<T> result;
  result.error = error;
  return result;
}

// Runs on a worker thread: getaddrinfo, results in the resolver's order.
IoResult<std::vector<SocketAddress>> blocking_lookup(const std::string& host, std::uint16_t port,
                                                     int family, int type) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (status != 0) {
    const int error = status == EAI_SYSTEM ? errno : status;
    return failure<std::vector<SocketAddress>>(error != 0 ? error : EAI_FAIL);
  }
  IoResult<std::vector<SocketAddress>> result;
  for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_addr == nullptr || entry->ai_addrlen > sizeof(sockaddr_storage)) continue;
    result.value.emplace_back(entry->ai_addr, entry->ai_addrlen);
  }
  ::freeaddrinfo(list);
  if (result.value.empty()) result.error = EAI_NONAME;
  return result;
}

}  // namespace

PosixNetwork::PosixNetwork(EpollIo& io, std::shared_ptr<ClosureQueue> completions)
    : io_(io), completions_(std::move(completions)) {}

PosixNetwork::~PosixNetwork() {
  for (auto& [id, lookup] : lookups_) {
    // Still inside getaddrinfo (or finished and its completion dropped by the closed queue).
    if (lookup->thread.joinable()) lookup->thread.detach();
  }
}

IoResult<IoHandle> PosixNetwork::socket(int domain, int type, int protocol) {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return failure<IoHandle>(errno);
  return {IoHandle{fd}, 0};
}

int PosixNetwork::bind(IoHandle socket, const SocketAddress& address) {
  if (bad(socket)) return EBADF;
  return ::bind(fd_of(socket), address.data(), address.length()) == 0 ? 0 : errno;
}

int PosixNetwork::listen(IoHandle socket, int backlog) {
  if (bad(socket)) return EBADF;
  return ::listen(fd_of(socket), backlog) == 0 ? 0 : errno;
}

IoResult<AcceptedSocket> PosixNetwork::accept(IoHandle socket) {
  if (bad(socket)) return failure<AcceptedSocket>(EBADF);
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  const int fd = ::accept4(fd_of(socket), reinterpret_cast<sockaddr*>(&peer), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == EAGAIN) io_.note_would_block(fd_of(socket), false);
    return failure<AcceptedSocket>(error);
  }
  return {AcceptedSocket{IoHandle{fd}, SocketAddress(reinterpret_cast<sockaddr*>(&peer), length)},
          0};
}

int PosixNetwork::connect(IoHandle socket, const SocketAddress& address) {
  if (bad(socket)) return EBADF;
  if (::connect(fd_of(socket), address.data(), address.length()) == 0) return 0;
  int error = errno;
  // A nonblocking connect interrupted by a signal goes on in the background, as EINPROGRESS.
  if (error == EINTR) error = EINPROGRESS;
  if (error == EINPROGRESS || error == EAGAIN) io_.note_would_block(fd_of(socket), true);
  return error;
}

IoResult<int> PosixNetwork::socket_error(IoHandle socket) {
  return get_option(socket, SOL_SOCKET, SO_ERROR);
}

IoResult<std::size_t> PosixNetwork::send(IoHandle socket, const void* data, std::size_t size) {
  if (bad(socket)) return failure<std::size_t>(EBADF);
  const ssize_t n = ::send(fd_of(socket), data, size, MSG_NOSIGNAL);
  if (n >= 0) return {static_cast<std::size_t>(n), 0};
  const int error = errno;
  if (error == EAGAIN) io_.note_would_block(fd_of(socket), true);
  return failure<std::size_t>(error);
}

IoResult<std::size_t> PosixNetwork::recv(IoHandle socket, void* buffer, std::size_t size) {
  if (bad(socket)) return failure<std::size_t>(EBADF);
  const ssize_t n = ::recv(fd_of(socket), buffer, size, 0);
  if (n >= 0) return {static_cast<std::size_t>(n), 0};
  const int error = errno;
  if (error == EAGAIN) io_.note_would_block(fd_of(socket), false);
  return failure<std::size_t>(error);
}

IoResult<std::size_t> PosixNetwork::send_to(IoHandle socket, const void* data, std::size_t size,
                                            const SocketAddress& to) {
  if (bad(socket)) return failure<std::size_t>(EBADF);
  const ssize_t n = ::sendto(fd_of(socket), data, size, MSG_NOSIGNAL, to.data(), to.length());
  if (n >= 0) return {static_cast<std::size_t>(n), 0};
  const int error = errno;
  if (error == EAGAIN) io_.note_would_block(fd_of(socket), true);
  return failure<std::size_t>(error);
}

IoResult<ReceivedDatagram> PosixNetwork::receive_from(IoHandle socket, void* buffer,
                                                      std::size_t size) {
  if (bad(socket)) return failure<ReceivedDatagram>(EBADF);
  sockaddr_storage from{};
  socklen_t length = sizeof from;
  const ssize_t n =
      ::recvfrom(fd_of(socket), buffer, size, 0, reinterpret_cast<sockaddr*>(&from), &length);
  if (n < 0) {
    const int error = errno;
    if (error == EAGAIN) io_.note_would_block(fd_of(socket), false);
    return failure<ReceivedDatagram>(error);
  }
  return {ReceivedDatagram{static_cast<std::size_t>(n),
                           SocketAddress(reinterpret_cast<sockaddr*>(&from), length)},
          0};
}

int PosixNetwork::shutdown(IoHandle socket, int how) {
  if (bad(socket)) return EBADF;
  return ::shutdown(fd_of(socket), how) == 0 ? 0 : errno;
}

int PosixNetwork::set_option(IoHandle socket, int level, int name, int value) {
  if (bad(socket)) return EBADF;
  return ::setsockopt(fd_of(socket), level, name, &value, sizeof value) == 0 ? 0 : errno;
}

IoResult<int> PosixNetwork::get_option(IoHandle socket, int level, int name) {
  if (bad(socket)) return failure<int>(EBADF);
  int value = 0;
  socklen_t length = sizeof value;
  if (::getsockopt(fd_of(socket), level, name, &value, &length) != 0) return failure<int>(errno);
  return {value, 0};
}

IoResult<SocketAddress> PosixNetwork::local_address(IoHandle socket) {
  if (bad(socket)) return failure<SocketAddress>(EBADF);
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd_of(socket), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return failure<SocketAddress>(errno);
  }
  return {SocketAddress(reinterpret_cast<sockaddr*>(&address), length), 0};
}

IoResult<SocketAddress> PosixNetwork::peer_address(IoHandle socket) {
  if (bad(socket)) return failure<SocketAddress>(EBADF);
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd_of(socket), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return failure<SocketAddress>(errno);
  }
  return {SocketAddress(reinterpret_cast<sockaddr*>(&address), length), 0};
}

// ---- resolve ---------------------------------------------------------------------------------

IoResult<std::vector<SocketAddress>> PosixNetwork::resolve(const std::string& host,
                                                           std::uint16_t port, int family,
                                                           int type) {
  if (std::optional<SocketAddress> numeric = SocketAddress::parse(host, port)) {
    if (family == AF_UNSPEC || family == numeric->family()) return {{*numeric}, 0};
  }
  const std::uint64_t id = next_lookup_id_++;
  auto owned = std::make_unique<Lookup>();
  Lookup& lookup = *owned;
  lookup.host = host;
  lookup.port = port;
  lookup.family = family;
  lookup.type = type;
  lookup.task = &lowlevel::current_task();
  Addresses answer;
  lookup.out = &answer;
  lookups_.emplace(id, std::move(owned));
  ++lookups_waited_;
  if (running_ < kLookupThreadsMax) {
    try {
      start_thread(id, lookup);
    } catch (const std::system_error&) {
      lookups_.erase(id);
      --lookups_waited_;
      return failure<std::vector<SocketAddress>>(EAI_AGAIN);
    }
  } else {
    queued_.push_back(id);
  }
  lowlevel::wait_task_rescheduled(
      [this, id](std::exception_ptr) {
        auto it = lookups_.find(id);
        TRELLIS_ASSERT(it != lookups_.end());
        it->second->task = nullptr;
        it->second->out = nullptr;
        --lookups_waited_;
        if (!it->second->thread.joinable()) {
          // Still queued: forget it.
          std::erase(queued_, id);
          lookups_.erase(it);
        }
        return lowlevel::Abort::kSucceeded;
      },
      "resolve (getaddrinfo)");
  return answer;
}

void PosixNetwork::start_thread(std::uint64_t id, Lookup& lookup) {
  TRELLIS_ASSERT(!lookup.thread.joinable());
  TRELLIS_ASSERT(running_ < kLookupThreadsMax);
  lookup.thread = std::thread([this, queue = completions_, id, host = lookup.host,
                               port = lookup.port, family = lookup.family, type = lookup.type] {
    // Signals belong to the loop thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    Addresses result = blocking_lookup(host, port, family, type);
    // `this` is only used by the closure, which runs on the loop thread before the queue
    // closes (never after: the backend closes the queue before destroying this object).
    queue->post(
        [this, id, result = std::move(result)]() mutable { complete(id, std::move(result)); });
  });
  ++running_;
}

void PosixNetwork::complete(std::uint64_t id, Addresses result) {
  auto it = lookups_.find(id);
  TRELLIS_ASSERT(it != lookups_.end());
  Lookup& lookup = *it->second;
  TRELLIS_ASSERT(lookup.thread.joinable());
  // The thread posted this as its last act: the join waits only for it to return.
  lookup.thread.join();
  --running_;
  if (lookup.task != nullptr) {
    *lookup.out = std::move(result);
    --lookups_waited_;
    lowlevel::reschedule(*lookup.task);
  }
  lookups_.erase(it);
  start_queued();
}

void PosixNetwork::start_queued() {
  while (!queued_.empty() && running_ < kLookupThreadsMax) {
    const std::uint64_t id = queued_.front();
    queued_.pop_front();
    auto it = lookups_.find(id);
    TRELLIS_ASSERT(it != lookups_.end());
    try {
      start_thread(id, *it->second);
    } catch (const std::system_error&) {
      Lookup& lookup = *it->second;
      if (lookup.task != nullptr) {
        lookup.out->error = EAI_AGAIN;
        --lookups_waited_;
        lowlevel::reschedule(*lookup.task);
      }
      lookups_.erase(it);
    }
  }
}

}  // namespace trellis::posix::internal
