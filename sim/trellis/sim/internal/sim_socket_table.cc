#include "trellis/sim/internal/sim_socket_table.h"

#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <utility>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {
namespace {

constexpr std::uint16_t kEphemeralFirst = 49152;

}  // namespace

bool SimSocket::outgoing_consistent() const noexcept {
  std::size_t sum = 0;
  for (const SimSegment& segment : outgoing) sum += segment.bytes.size();
  return sum == outgoing_bytes;
}

SimSocketTable::SimSocketTable(HandleTable& handles, const WorldView& world)
    : handles_(handles), world_(world) {}

SimSocket& SimSocketTable::open(HostState& host, int type) {
  TRELLIS_ASSERT(type == SOCK_STREAM || type == SOCK_DGRAM);
  auto socket = std::make_unique<SimSocket>();
  socket->id = handles_.allocate(HandleKind::kSocket);
  socket->host = &host;
  socket->incarnation = host.incarnation;
  socket->type = type;
  SimSocket& result = *socket;
  const bool fresh = sockets_.emplace(socket->id, std::move(socket)).second;
  TRELLIS_ASSERT(fresh);  // handles are never reused
  return result;
}

SimSocket* SimSocketTable::find(std::int64_t id) {
  auto it = sockets_.find(id);
  return it == sockets_.end() ? nullptr : it->second.get();
}

SimSocket* SimSocketTable::lookup(IoHandle handle, int* error, const char* operation) {
  HostState& host = world_.caller(operation);
  if (world_.caller_down(host)) {
    *error = ENETDOWN;
    return nullptr;
  }
  SimSocket* socket = find(handle.value);
  if (socket == nullptr || socket->closed_by_user || socket->host != &host) {
    *error = EBADF;
    return nullptr;
  }
  // A crashed host's sockets were erased with it: none of an earlier incarnation is left.
  TRELLIS_ASSERT(socket->incarnation == host.incarnation);
  TRELLIS_ASSERT(handles_.kind(socket->id) == HandleKind::kSocket);
  *error = 0;
  return socket;
}

SimSocket* SimSocketTable::bound_to(std::uint32_t host, int type, std::uint16_t port) {
  auto it = ports_.find({host, type, port});
  return it == ports_.end() ? nullptr : find(it->second);
}

HostState* SimSocketTable::host_at(const std::string& ip, HostState* self) const {
  if (ip == "127.0.0.1") return self;
  return world_.host_by_address ? world_.host_by_address(ip) : nullptr;
}

int SimSocketTable::bind_port(SimSocket& socket, std::uint16_t port) {
  const std::uint32_t host = socket.host->index;
  if (port == 0) {
    std::uint16_t& next = next_ephemeral_.try_emplace(host, kEphemeralFirst).first->second;
    for (int tries = 0; tries < 65536 - kEphemeralFirst; ++tries) {
      const std::uint16_t candidate = next;
      next = next == 65535 ? kEphemeralFirst : static_cast<std::uint16_t>(next + 1);
      if (!ports_.contains({host, socket.type, candidate})) {
        port = candidate;
        break;
      }
    }
    TRELLIS_ASSERT(next >= kEphemeralFirst);
    if (port == 0) return EADDRINUSE;
  } else if (ports_.contains({host, socket.type, port})) {
    return EADDRINUSE;
  }
  ports_.emplace(std::make_tuple(host, socket.type, port), socket.id);
  if (socket.local.empty()) {
    socket.local = *SocketAddress::parse(socket.host->address, port);
  }
  socket.local.set_port(port);
  TRELLIS_ASSERT(socket.bound());
  return 0;
}

void SimSocketTable::unbind(SimSocket& socket) {
  if (!socket.bound()) return;
  auto it = ports_.find({socket.host->index, socket.type, socket.local.port()});
  if (it != ports_.end() && it->second == socket.id) ports_.erase(it);
}

void SimSocketTable::erase(std::int64_t id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  SimSocket& socket = *it->second;
  TRELLIS_ASSERT(socket.reader == nullptr && socket.writer == nullptr);
  TRELLIS_ASSERT(socket.outgoing.empty());  // delivered or dropped first (SimTcp's ledger)
  unbind(socket);
  handles_.release(id);
  sockets_.erase(it);
}

std::vector<std::int64_t> SimSocketTable::sockets_of(const HostState& host) const {
  std::vector<std::int64_t> ids;
  for (const auto& [id, socket] : sockets_) {
    if (socket->host == &host) ids.push_back(id);
  }
  return ids;
}

int SimSocketTable::bind(SimSocket& socket, const SocketAddress& address) {
  if (address.family() != AF_INET) return EAFNOSUPPORT;
  if (socket.bound()) return EINVAL;  // bound already
  const std::string ip = address.host();
  if (ip != "0.0.0.0" && ip != "127.0.0.1" && ip != socket.host->address) return EADDRNOTAVAIL;
  return bind_port(socket, address.port());
}

IoResult<int> SimSocketTable::take_error(SimSocket& socket) {
  return {std::exchange(socket.error, 0), 0};
}

IoResult<int> SimSocketTable::get_option(SimSocket& socket, int level, int name) {
  if (level == SOL_SOCKET && name == SO_ERROR) return take_error(socket);
  if (level == SOL_SOCKET && name == SO_TYPE) return {socket.type, 0};
  // Options (SO_REUSEADDR, TCP_NODELAY, ...) change nothing the simulation models.
  return {0, 0};
}

IoResult<SocketAddress> SimSocketTable::local_address(const SimSocket& socket) const {
  if (socket.local.empty()) return {*SocketAddress::parse("0.0.0.0", 0), 0};
  return {socket.local, 0};
}

IoResult<SocketAddress> SimSocketTable::peer_address(const SimSocket& socket) const {
  if (socket.state != SimSocket::State::kConnected || socket.peer.empty()) {
    return {{}, ENOTCONN};
  }
  return {socket.peer, 0};
}

}  // namespace trellis::sim::internal
