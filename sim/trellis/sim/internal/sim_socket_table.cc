#include "trellis/sim/internal/sim_socket_table.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <iterator>
#include <string>
#include <utility>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {
namespace {

constexpr std::uint16_t kEphemeralFirst = 49152;
constexpr const char* kWildcard = "0.0.0.0";
constexpr const char* kLoopback = "127.0.0.1";

// The options the simulator knows, with Linux's semantics for an int-valued
// setsockopt/getsockopt. Options outside this table get ENOPROTOOPT.
struct OptionRule {
  enum class Kind {
    kFlag,      // any int; reads back 0 or 1
    kInt,       // reads back as set
    kStruct,    // the value is a struct (SO_LINGER): an int is EINVAL; reads as its first int
    kReadOnly,  // SO_TYPE, SO_ERROR: answered by get_option itself
  };
  int level;
  int name;
  Kind kind;
  int type;  // SOCK_STREAM or SOCK_DGRAM only, 0 for both
};

constexpr OptionRule kOptionRules[] = {
    {SOL_SOCKET, SO_TYPE, OptionRule::Kind::kReadOnly, 0},
    {SOL_SOCKET, SO_ERROR, OptionRule::Kind::kReadOnly, 0},
    {SOL_SOCKET, SO_REUSEADDR, OptionRule::Kind::kFlag, 0},
    {SOL_SOCKET, SO_REUSEPORT, OptionRule::Kind::kFlag, 0},
    {SOL_SOCKET, SO_KEEPALIVE, OptionRule::Kind::kFlag, 0},
    {SOL_SOCKET, SO_BROADCAST, OptionRule::Kind::kFlag, 0},
    {SOL_SOCKET, SO_LINGER, OptionRule::Kind::kStruct, 0},
    {IPPROTO_TCP, TCP_NODELAY, OptionRule::Kind::kFlag, SOCK_STREAM},
    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, OptionRule::Kind::kInt, SOCK_STREAM},
};

// The rule for (level, name) on a socket of this type, or nullptr (ENOPROTOOPT: Linux's
// answer for a TCP option on a datagram socket too).
const OptionRule* option_rule(int level, int name, int type) {
  for (const OptionRule& rule : kOptionRules) {
    if (rule.level == level && rule.name == name) {
      return rule.type == 0 || rule.type == type ? &rule : nullptr;
    }
  }
  return nullptr;
}

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
  if (ip == kLoopback || ip == kWildcard) return self;
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
  if (socket.local.empty()) socket.local = *SocketAddress::parse(kWildcard, port);
  socket.local.set_port(port);
  TRELLIS_ASSERT(socket.bound());
  TRELLIS_ASSERT(ports_.at({host, socket.type, port}) == socket.id);
  return 0;
}

SocketAddress SimSocketTable::source_address(const SimSocket& socket,
                                             const SocketAddress& to) const {
  TRELLIS_ASSERT(socket.bound());
  if (socket.local.host() != kWildcard) return socket.local;
  const std::string to_ip = to.host();
  const bool loopback = to_ip == kLoopback || to_ip == kWildcard;
  SocketAddress source =
      *SocketAddress::parse(loopback ? kLoopback : socket.host->address, socket.local.port());
  TRELLIS_ASSERT(source.port() == socket.local.port());
  return source;
}

SocketAddress SimSocketTable::destination(const SocketAddress& to) {
  if (to.host() != kWildcard) return to;
  return *SocketAddress::parse(kLoopback, to.port());
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
  if (ip != kWildcard && ip != kLoopback && ip != socket.host->address) return EADDRNOTAVAIL;
  TRELLIS_ASSERT(socket.local.empty());  // not bound: no address yet
  // The socket reports the address bind() named (Linux's inet_bind), with the port chosen.
  socket.local = address;
  if (const int e = bind_port(socket, address.port()); e != 0) {
    socket.local = SocketAddress();
    return e;
  }
  TRELLIS_ASSERT(socket.local.host() == ip);
  return 0;
}

IoResult<int> SimSocketTable::take_error(SimSocket& socket) {
  return {std::exchange(socket.error, 0), 0};
}

int SimSocketTable::set_option(SimSocket& socket, int level, int name, int value) {
  const OptionRule* rule = option_rule(level, name, socket.type);
  if (rule == nullptr || rule->kind == OptionRule::Kind::kReadOnly) return ENOPROTOOPT;
  // Linux's sock_setsockopt: a struct option given an int is too short.
  if (rule->kind == OptionRule::Kind::kStruct) return EINVAL;
  socket.options[{level, name}] = rule->kind == OptionRule::Kind::kFlag ? (value != 0) : value;
  TRELLIS_ASSERT(socket.options.size() <= std::size(kOptionRules));
  return 0;
}

IoResult<int> SimSocketTable::get_option(SimSocket& socket, int level, int name) {
  if (level == SOL_SOCKET && name == SO_ERROR) return take_error(socket);
  if (level == SOL_SOCKET && name == SO_TYPE) return {socket.type, 0};
  const OptionRule* rule = option_rule(level, name, socket.type);
  if (rule == nullptr) return {0, ENOPROTOOPT};
  TRELLIS_ASSERT(rule->kind != OptionRule::Kind::kReadOnly);  // answered above
  // Never set: every option the table knows defaults to 0 (SO_LINGER's l_onoff included).
  auto it = socket.options.find({level, name});
  return {it == socket.options.end() ? 0 : it->second, 0};
}

IoResult<SocketAddress> SimSocketTable::local_address(const SimSocket& socket) const {
  if (socket.local.empty()) return {*SocketAddress::parse("0.0.0.0", 0), 0};
  return {socket.local, 0};
}

IoResult<SocketAddress> SimSocketTable::peer_address(const SimSocket& socket) const {
  // A datagram socket is connected once connect() named its peer (Linux: TCP_ESTABLISHED).
  if (socket.type == SOCK_DGRAM) {
    if (socket.peer.empty()) return {{}, ENOTCONN};
    return {socket.peer, 0};
  }
  if (socket.state != SimSocket::State::kConnected || socket.peer.empty()) {
    return {{}, ENOTCONN};
  }
  return {socket.peer, 0};
}

}  // namespace trellis::sim::internal
