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
  SocketAddress local;  // port 0 until bound
  SocketAddress peer;
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
  // The host a numeric address belongs to (self for 127.0.0.1), or nullptr.
  HostState* host_at(const std::string& ip, HostState* self) const;
  HostState* host_at(const SocketAddress& address, HostState* self) const {
    return host_at(address.host(), self);
  }
  // Binds socket to port (0: the next free ephemeral one). Returns 0 or EADDRINUSE.
  int bind_port(SimSocket& socket, std::uint16_t port);
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
