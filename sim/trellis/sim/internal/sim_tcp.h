// trellis/sim/internal/sim_tcp.h — SimTcp: TCP over the simulated network: connection
// set-up (SYN, SYN-ACK, refusal, retransmission, time-out), in-order delivery of each
// connection's segments with a window, orderly close (FIN) and resets.
//
// What it promises (asserted): a connection's bytes arrive in order, once, or the connection
// is reset; every byte a send() accepted is, at each moment, delivered, in flight (in a
// sender's outgoing queue, whose byte count equals its segments' sum), or dropped by a fault
// (a reset, a crash) — never lost otherwise (Ledger). Partitions and clogs hold segments
// back; nothing is lost while both hosts live.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/core/io_facet.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/socket_address.h"
#include "trellis/sim/internal/sim_event_loop.h"
#include "trellis/sim/internal/sim_links.h"
#include "trellis/sim/internal/sim_socket_table.h"
#include "trellis/sim/network_config.h"

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

class SimTcp {
 public:
  SimTcp(SimEventLoop& loop, SimSocketTable& sockets, SimLinks& links, const NetworkConfig& config,
         Trace* trace);

  // Readiness of a stream socket (level-triggered: what a call would see now).
  bool readable(const SimSocket& socket);
  bool writable(const SimSocket& socket);
  // Wakes the socket's waiters whose condition now holds.
  void poke(SimSocket& socket);

  // NetworkFacet calls on a stream socket the prologue found (errno results as the kernel's).
  int listen(SimSocket& socket, int backlog);
  IoResult<AcceptedSocket> accept(SimSocket& socket);
  int connect(SimSocket& socket, const SocketAddress& address);
  IoResult<std::size_t> send(SimSocket& socket, const void* data, std::size_t size);
  IoResult<std::size_t> recv(SimSocket& socket, void* buffer, std::size_t size);
  int shutdown(SimSocket& socket, int how);
  // The user's close, after its waiters were told: unbinds, resets connections never
  // accepted, sends a FIN after the data; the socket stays until its segments drain.
  void close(SimSocket& socket);
  // A crash: the host's unsent segments are lost (the sockets vanish without a FIN).
  void host_crashed(const HostState& host);

  std::uint64_t messages_delivered() const noexcept { return messages_delivered_; }

 private:
  // Where every byte a send() accepted is. Invariant (check()): sent == delivered +
  // in_flight + dropped, and in_flight == the sum of every socket's outgoing_bytes.
  struct Ledger {
    std::uint64_t sent = 0;
    std::uint64_t delivered = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t dropped = 0;
  };
  void check_ledger() const;

  std::size_t window_left(const SimSocket& socket);
  void enqueue(SimSocket& socket, SimSegment segment);
  // Throws away the socket's unsent segments (a reset, a crash).
  void drop_outgoing(SimSocket& socket);
  void schedule_delivery(SimSocket& socket);
  void deliver(std::int64_t id);
  void deliver_front(SimSocket& socket, SimSocket& peer);
  void reset_peer_of(SimSocket& socket);
  void erase_if_drained(SimSocket& socket);

  // Connection set-up, on the client's behalf.
  void syn_arrives(std::int64_t client_id, SocketAddress target, std::uint64_t incarnation);
  void retry_or_time_out(SimSocket& client, const SocketAddress& target, Time now);
  void open_server_side(SimSocket& client, SimSocket& listener, HostState& server_host,
                        const SocketAddress& target, Time now);
  // The attempt ends with error (ECONNREFUSED, ETIMEDOUT), if it is still on.
  void fail_connect(std::int64_t client_id, std::uint64_t incarnation, int error);

  SimEventLoop& loop_;
  SimSocketTable& sockets_;
  SimLinks& links_;
  const NetworkConfig& config_;
  Trace* trace_;
  Ledger ledger_;
  std::uint64_t messages_delivered_ = 0;
  std::uint64_t next_message_id_ = 1;
};

}  // namespace trellis::sim::internal
