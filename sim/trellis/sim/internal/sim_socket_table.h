// trellis/sim/internal/sim_socket_table.h — SimSocketTable: the simulated sockets of every
// host (SimSocket), their handles and bound ports, and the socket calls that do not depend on
// the protocol (bind, options, addresses, the pending error).
//
// The protocols (sim_tcp.h, sim_udp.h) work on the sockets this table holds; SimBackend
// routes each call, after lookup() (the prologue of world_view.h), by the socket's type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "trellis/core/io_facet.h"
#include "trellis/core/socket_address.h"
#include "trellis/core/task.h"
#include "trellis/core/time.h"
#include "trellis/sim/internal/handle_table.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/world_view.h"

namespace trellis::sim::internal {

// Bytes of one TCP connection on their way, in order.
struct SimSegment {
  std::vector<std::byte> bytes;
  bool fin = false;
  // A reset (close() with unread data): the last segment, and it carries no bytes.
  bool rst = false;
  // Transmitted onto a link that was up: it reaches the peer even if the sender crashes
  // before it lands. False while it waits in the sender's buffer (a partition or clog holds
  // it back): a crash loses it. Invariant: the on_wire segments of a queue are a prefix.
  bool on_wire = false;
  Time due{};
  std::uint64_t id = 0;  // for the trace's message arrows
};

struct SimDatagram {
  SocketAddress from;
  std::vector<std::byte> bytes;
};

struct SimSocket {
  enum class State { kFresh, kListening, kConnecting, kConnected };

  std::int64_t id = -1;
  HostState* host = nullptr;
  // Invariant: == host->incarnation (a crash erases the host's sockets).
  std::uint64_t incarnation = 0;
  int type = 0;  // SOCK_STREAM or SOCK_DGRAM
  State state = State::kFresh;
  // Invariant: closed_by_user sockets are invisible to handles and stay only while their
  // outgoing segments drain (TCP delivers data and FIN after close()).
  bool closed_by_user = false;
  // The address bind() named (0.0.0.0 for an implicit bind), until connect() fixes the
  // source address the route picks (as Linux does); empty (port 0) until bound.
  SocketAddress local;
  // TCP: the address connect() named, or the accepted connection's client. UDP: the
  // connected peer (empty: not connected).
  SocketAddress peer;
  // Options set through set_option, by (level, name); absent: the option's default
  // (SimSocketTable's option table).
  std::map<std::pair<int, int>, int> options;
  // Listening.
  int backlog = 0;
  std::deque<std::int64_t> accept_queue;
  // Connected. peer_id: the other end's socket id (-1 before connection).
  std::int64_t peer_id = -1;
  std::deque<std::byte> received;
  bool fin_received = false;
  bool shut_read = false;
  bool shut_write = false;
  // Pending error (ECONNREFUSED, ECONNRESET, ETIMEDOUT): reported by the next operation.
  int error = 0;
  bool reset = false;  // got a reset: sends fail with EPIPE after the first error
  // Sent, not yet delivered, in order; at most one delivery event pending.
  std::deque<SimSegment> outgoing;
  // Invariant: outgoing_bytes == the sum of outgoing[i].bytes.size().
  std::size_t outgoing_bytes = 0;
  bool delivery_scheduled = false;
  // The link was down at the last delivery attempt: outgoing waits for a retransmission
  // (none of it is on the wire).
  bool held_back = false;
  Time last_due{};
  // Connecting: when the attempt gives up.
  Time connect_deadline{};
  // Datagram.
  std::deque<SimDatagram> datagrams;
  // At most one task waits to read and one to write (BusyResourceError otherwise).
  lowlevel::Task* reader = nullptr;
  lowlevel::Task* writer = nullptr;

  bool bound() const noexcept { return !local.empty() && local.port() != 0; }
  // O(segments): the outgoing_bytes invariant.
  bool outgoing_consistent() const noexcept;
};

class SimSocketTable {
 public:
  SimSocketTable(HandleTable& handles, const WorldView& world);

  // A new socket of host, of type SOCK_STREAM or SOCK_DGRAM, with a fresh handle.
  SimSocket& open(HostState& host, int type);
  // The socket with this id (closed by the user or not), or nullptr.
  SimSocket* find(std::int64_t id);
  // The prologue (world_view.h): the caller's open socket for handle, or nullptr with *error
  // ENETDOWN (the caller's host is down) or EBADF. Throws UsageError outside every host.
  SimSocket* lookup(IoHandle handle, int* error, const char* operation);
  // The socket bound to (host index, type, port), or nullptr.
  SimSocket* bound_to(std::uint32_t host, int type, std::uint16_t port);
  // The host a numeric address belongs to (self for 127.0.0.1 and 0.0.0.0, as Linux routes
  // them), or nullptr.
  HostState* host_at(const std::string& ip, HostState* self) const;
  HostState* host_at(const SocketAddress& address, HostState* self) const {
    return host_at(address.host(), self);
  }
  // Binds socket to port (0: the next free ephemeral one), keeping the address it has (the
  // wildcard if none). Returns 0 or EADDRINUSE. Ports are per (host, type) whatever the
  // address: 127.0.0.1:p and 0.0.0.0:p conflict (a simplification, network_config.h).
  int bind_port(SimSocket& socket, std::uint16_t port);
  // The address packets from socket to `to` carry: the bound address, or for a wildcard
  // bind the route's source: 127.0.0.1 towards the host itself by loopback, else the
  // host's address.
  SocketAddress source_address(const SimSocket& socket, const SocketAddress& to) const;
  // The address a connection to `to` reaches (0.0.0.0 means 127.0.0.1, as in Linux).
  static SocketAddress destination(const SocketAddress& to);
  void unbind(SimSocket& socket);
  // Removes the socket and releases its handle. Requires: no waiter.
  void erase(std::int64_t id);
  // Ids of the host's sockets, in id order.
  std::vector<std::int64_t> sockets_of(const HostState& host) const;
  std::size_t size() const noexcept { return sockets_.size(); }
  template <class Fn>
  void for_each(Fn fn) const {
    for (const auto& [id, socket] : sockets_) fn(*socket);
  }

  // Protocol-independent calls, on a socket lookup() returned.
  int bind(SimSocket& socket, const SocketAddress& address);
  IoResult<int> take_error(SimSocket& socket);
  // Options with Linux's semantics, for the ones in the table of sim_socket_table.cc
  // (SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST: flags read back as 0/1;
  // TCP_NODELAY, TCP_NOTSENT_LOWAT on streams; SO_LINGER, whose value is a struct: EINVAL
  // through this int-valued call; SO_TYPE, SO_ERROR: read only). Any other option is
  // refused with ENOPROTOOPT: the simulator does not model it, and says so rather than
  // pretend (set and get alike).
  int set_option(SimSocket& socket, int level, int name, int value);
  IoResult<int> get_option(SimSocket& socket, int level, int name);
  IoResult<SocketAddress> local_address(const SimSocket& socket) const;
  IoResult<SocketAddress> peer_address(const SimSocket& socket) const;

 private:
  HandleTable& handles_;
  const WorldView& world_;
  std::map<std::int64_t, std::unique_ptr<SimSocket>> sockets_;
  // (host index, type, port) -> socket id, for bound sockets.
  std::map<std::tuple<std::uint32_t, int, std::uint16_t>, std::int64_t> ports_;
  // Invariant: in [kEphemeralFirst, 65535] for every host.
  std::map<std::uint32_t, std::uint16_t> next_ephemeral_;
};

}  // namespace trellis::sim::internal
