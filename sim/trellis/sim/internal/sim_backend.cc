#include "trellis/sim/internal/sim_backend.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"

namespace trellis::sim::internal {

SimBackend::SimBackend(SimClock& clock, SchedulePolicy& policy, Prng& prng, NetworkConfig config,
                       WorldView world, Trace* trace)
    : config_(config),
      world_(std::move(world)),
      trace_(trace),
      threads_(prng),
      loop_(clock, policy),
      links_(config_, prng),
      tcp_(loop_, sockets_, links_, config_, trace_),
      udp_(loop_, sockets_, links_, prng, config_, trace_) {
  TRELLIS_ASSERT(config_.latency_min <= config_.latency_max);
}

SimBackend::~SimBackend() = default;

BackendStatistics SimBackend::statistics() const {
  BackendStatistics stats;
  stats.tasks_waiting_io = loop_.waiters();
  stats.pending_sources = loop_.events().size();
  return stats;
}

// ---- IoFacet: routed by the handle table -----------------------------------------------------

void SimBackend::wait(IoHandle handle, bool for_write) {
  if (is_pipe(handle)) return pipes_.wait(handle, for_write);
  const char* operation = for_write ? "wait_writable" : "wait_readable";
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, operation);
  if (socket == nullptr) throw OSError(error, operation);
  wait_socket(*socket, for_write);
}

void SimBackend::wait_socket(SimSocket& socket, bool for_write) {
  loop_.enter(for_write ? socket.writer : socket.reader, "socket", for_write);
  const std::int64_t id = socket.id;
  const bool ready = socket.type == SOCK_DGRAM
                         ? (for_write ? SimUdp::writable(socket) : SimUdp::readable(socket))
                         : (for_write ? tcp_.writable(socket) : tcp_.readable(socket));
  if (ready) {
    // Ready already: wake at this instant, through the queue (after the park below).
    loop_.at(loop_.now(), [this, id] {
      if (SimSocket* s = sockets_.find(id)) poke(*s);
    });
  }
  loop_.park(
      [this, id, for_write]() -> lowlevel::Task** {
        SimSocket* s = sockets_.find(id);
        if (s == nullptr) return nullptr;
        return for_write ? &s->writer : &s->reader;
      },
      for_write ? "sim socket writable" : "sim socket readable");
}

void SimBackend::poke(SimSocket& socket) {
  if (socket.type == SOCK_DGRAM) {
    udp_.poke(socket);
  } else {
    tcp_.poke(socket);
  }
}

void SimBackend::notify_closing(IoHandle handle) {
  if (is_pipe(handle)) return pipes_.notify_closing(handle);
  SimSocket* socket = sockets_.find(handle.value);
  if (socket == nullptr || socket->closed_by_user) return;
  notify_socket_closing(*socket);
}

void SimBackend::notify_socket_closing(SimSocket& socket) {
  for (lowlevel::Task** slot : {&socket.reader, &socket.writer}) {
    if (*slot != nullptr) {
      loop_.wake(*slot, std::make_exception_ptr(ClosedResourceError(
                            "another task closed this socket while it was waited on")));
    }
  }
}

int SimBackend::close(IoHandle handle) {
  if (is_pipe(handle)) return pipes_.close(handle);
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "close");
  if (socket == nullptr) return error;
  notify_socket_closing(*socket);
  if (socket->type == SOCK_DGRAM) {
    udp_.close(*socket);
  } else {
    tcp_.close(*socket);
  }
  return 0;
}

IoResult<std::size_t> SimBackend::read(IoHandle handle, void* buffer, std::size_t size) {
  if (is_pipe(handle)) return pipes_.read(handle, buffer, size);
  return recv(handle, buffer, size);
}

IoResult<std::size_t> SimBackend::write(IoHandle handle, const void* data, std::size_t size) {
  if (is_pipe(handle)) return pipes_.write(handle, data, size);
  return send(handle, data, size);
}

// ---- NetworkFacet: the prologue once, then the socket's protocol ----------------------------

IoResult<IoHandle> SimBackend::socket(int domain, int type, int protocol) {
  HostState& host = world_.caller("socket");
  if (world_.caller_down(host)) return {{}, ENETDOWN};
  if (domain != AF_INET) return {{}, EAFNOSUPPORT};
  const int base_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (base_type != SOCK_STREAM && base_type != SOCK_DGRAM) return {{}, EPROTONOSUPPORT};
  if (protocol != 0 && protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) {
    return {{}, EPROTONOSUPPORT};
  }
  return {IoHandle{sockets_.open(host, base_type).id}, 0};
}

int SimBackend::bind(IoHandle handle, const SocketAddress& address) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "bind");
  if (socket == nullptr) return error;
  return sockets_.bind(*socket, address);
}

int SimBackend::listen(IoHandle handle, int backlog) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "listen");
  if (socket == nullptr) return error;
  if (socket->type != SOCK_STREAM) return EOPNOTSUPP;
  return tcp_.listen(*socket, backlog);
}

IoResult<AcceptedSocket> SimBackend::accept(IoHandle handle) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "accept");
  if (socket == nullptr) return {{}, error};
  if (socket->type != SOCK_STREAM) return {{}, EINVAL};  // never listening
  return tcp_.accept(*socket);
}

int SimBackend::connect(IoHandle handle, const SocketAddress& address) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "connect");
  if (socket == nullptr) return error;
  if (address.family() != AF_INET) return EAFNOSUPPORT;
  if (socket->type == SOCK_DGRAM) return udp_.connect(*socket, address);
  return tcp_.connect(*socket, address);
}

IoResult<int> SimBackend::socket_error(IoHandle handle) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "getsockopt(SO_ERROR)");
  if (socket == nullptr) return {0, error};
  return sockets_.take_error(*socket);
}

IoResult<std::size_t> SimBackend::send(IoHandle handle, const void* data, std::size_t size) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "send");
  if (socket == nullptr) return {0, error};
  if (socket->type == SOCK_DGRAM) return udp_.send(*socket, data, size);
  return tcp_.send(*socket, data, size);
}

IoResult<std::size_t> SimBackend::recv(IoHandle handle, void* buffer, std::size_t size) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "recv");
  if (socket == nullptr) return {0, error};
  if (socket->type == SOCK_DGRAM) {
    IoResult<ReceivedDatagram> got = udp_.receive_from(*socket, buffer, size);
    return {got.value.size, got.error};
  }
  return tcp_.recv(*socket, buffer, size);
}

IoResult<std::size_t> SimBackend::send_to(IoHandle handle, const void* data, std::size_t size,
                                          const SocketAddress& to) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "sendto");
  if (socket == nullptr) return {0, error};
  if (socket->type != SOCK_DGRAM) return {0, EOPNOTSUPP};
  return udp_.send_to(*socket, data, size, to);
}

IoResult<ReceivedDatagram> SimBackend::receive_from(IoHandle handle, void* buffer,
                                                    std::size_t size) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "recvfrom");
  if (socket == nullptr) return {{}, error};
  if (socket->type != SOCK_DGRAM) return {{}, EOPNOTSUPP};
  return udp_.receive_from(*socket, buffer, size);
}

int SimBackend::shutdown(IoHandle handle, int how) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "shutdown");
  if (socket == nullptr) return error;
  if (socket->type == SOCK_DGRAM) return SimUdp::shutdown(*socket, how);
  return tcp_.shutdown(*socket, how);
}

int SimBackend::set_option(IoHandle handle, int level, int name, int value) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "setsockopt");
  if (socket == nullptr) return error;
  // Recorded and read back; none changes what the simulation does (sim_socket_table.h).
  return sockets_.set_option(*socket, level, name, value);
}

IoResult<int> SimBackend::get_option(IoHandle handle, int level, int name) {
  const bool so_error = level == SOL_SOCKET && name == SO_ERROR;
  int error = 0;
  SimSocket* socket =
      sockets_.lookup(handle, &error, so_error ? "getsockopt(SO_ERROR)" : "getsockopt");
  if (socket == nullptr) return {0, error};
  return sockets_.get_option(*socket, level, name);
}

IoResult<SocketAddress> SimBackend::local_address(IoHandle handle) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "getsockname");
  if (socket == nullptr) return {{}, error};
  return sockets_.local_address(*socket);
}

IoResult<SocketAddress> SimBackend::peer_address(IoHandle handle) {
  int error = 0;
  SimSocket* socket = sockets_.lookup(handle, &error, "getpeername");
  if (socket == nullptr) return {{}, error};
  return sockets_.peer_address(*socket);
}

IoResult<std::vector<SocketAddress>> SimBackend::resolve(const std::string& host,
                                                         std::uint16_t port, int family, int type) {
  (void)type;
  return resolver_.resolve(host, port, family);
}

// ---- faults ----------------------------------------------------------------------------------

void SimBackend::host_crashed(HostState& host) {
  TRELLIS_ASSERT(!host.alive);
  signals_.host_crashed(host);
  processes_.host_crashed(host);
  pipes_.host_crashed(host);
  tcp_.host_crashed(host);  // segments on the wire still land; unsent ones are lost
  for (std::int64_t id : sockets_.sockets_of(host)) {
    SimSocket& socket = *sockets_.find(id);
    // The host's tasks were cancelled first; a waiter left here is parked in a shielded
    // scope: it hears the crash as a reset.
    for (lowlevel::Task** slot : {&socket.reader, &socket.writer}) {
      if (*slot != nullptr) {
        loop_.wake(*slot, std::make_exception_ptr(OSError(ENETDOWN, "host crashed")));
      }
    }
    sockets_.erase(id);
  }
  // A crashed host's handles are refused from now on: none is left.
  TRELLIS_ASSERT_SLOW(sockets_.sockets_of(host).empty());
}

}  // namespace trellis::sim::internal
