// trellis/sim/internal/sim_udp.h — SimUdp: UDP over the simulated network: datagrams lost,
// duplicated and reordered with the configured chances (network_config.h), dropped by
// partitions, dead hosts and full receive queues, truncated to the reader's buffer. A
// datagram to a port nobody listens on (or to a socket connected to someone else) is
// answered by a port-unreachable, which a connected sender hears as ECONNREFUSED once.
//
// What it promises (asserted): every datagram copy sent is, at each moment, in flight (an
// event pending), delivered to a queue, or dropped (lost, partitioned, no receiver, queue
// full) — counted once (Ledger); a receive queue never exceeds datagram_queue_max.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/base/prng.h"
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

class SimUdp {
 public:
  SimUdp(SimEventLoop& loop, SimSocketTable& sockets, SimLinks& links, Prng& prng,
         const NetworkConfig& config, Trace* trace);

  // Readiness of a datagram socket.
  static bool readable(const SimSocket& socket);
  static bool writable(const SimSocket& socket);
  void poke(SimSocket& socket);

  // NetworkFacet calls on a datagram socket the prologue found.
  // connect: sets the peer (binding an ephemeral port first, fixing the source address):
  // the only sender the socket hears from, and getpeername's answer.
  int connect(SimSocket& socket, const SocketAddress& address);
  IoResult<std::size_t> send(SimSocket& socket, const void* data, std::size_t size);
  IoResult<std::size_t> send_to(SimSocket& socket, const void* data, std::size_t size,
                                const SocketAddress& to);
  IoResult<ReceivedDatagram> receive_from(SimSocket& socket, void* buffer, std::size_t size);
  // A datagram socket is never connected as a stream is: EINVAL for a bad how, else
  // ENOTCONN.
  static int shutdown(const SimSocket& socket, int how);
  // The user's close, after its waiters were told: the socket and its port go at once.
  void close(SimSocket& socket);

  std::uint64_t messages_delivered() const noexcept { return ledger_.delivered; }

 private:
  static constexpr std::size_t kDatagramSizeMax = 65507;
  // Datagram copies. Invariant (check()): sent == delivered + in_flight + dropped.
  struct Ledger {
    std::uint64_t sent = 0;
    std::uint64_t delivered = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t dropped = 0;
  };
  void check_ledger() const;
  // A copy of datagram from socket from_id of from_host lands at ip:port (or is dropped).
  void arrive(HostState* from_host, std::int64_t from_id, const std::string& ip, std::uint16_t port,
              const SimDatagram& datagram);
  // Nobody at the port of host `at`: tells socket to_id of to_host, if it is connected.
  void port_unreachable(HostState& at, HostState* to_host, std::int64_t to_id);

  SimEventLoop& loop_;
  SimSocketTable& sockets_;
  SimLinks& links_;
  Prng& prng_;
  const NetworkConfig& config_;
  Trace* trace_;
  Ledger ledger_;
};

}  // namespace trellis::sim::internal
