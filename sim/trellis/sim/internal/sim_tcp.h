// trellis/sim/internal/sim_tcp.h — SimTcp: TCP over the simulated network: connection
// set-up (SYN, SYN-ACK, refusal, retransmission, time-out), in-order delivery of each
// connection's segments with a window, orderly close (FIN) and resets (close() with unread
// data sends one, as Linux does).
//
// What it promises (asserted): a connection's bytes arrive in order, once, or the connection
// is reset; every byte a send() accepted is, at each moment, delivered, in flight (in a
// sender's outgoing queue, whose byte count equals its segments' sum, or on the wire from a
// crashed sender: an orphan), or dropped by a fault (a reset, a crash) — never lost
// otherwise (Ledger). Partitions and clogs hold segments back; nothing is lost while both
// hosts live. A segment is on the wire once sent over a link that was up; a crash of its
// sender loses only what was not (SimSegment::on_wire).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>

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
  // accepted, sends a FIN after the data (a reset instead, if received data is unread);
  // the socket stays until its segments drain.
  void close(SimSocket& socket);
  // A crash, before the host's sockets are erased: the segments on the wire still land
  // (orphans), those in the buffer are lost (the sockets vanish without a FIN).
  void host_crashed(const HostState& host);

  std::uint64_t messages_delivered() const noexcept { return messages_delivered_; }

 private:
  // Where every byte a send() accepted is. Invariant (check()): sent == delivered +
  // in_flight + dropped, and in_flight == the sum of every socket's outgoing_bytes plus
  // orphan_bytes_.
  struct Ledger {
    std::uint64_t sent = 0;
    std::uint64_t delivered = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t dropped = 0;
  };
  void check_ledger() const;

  std::size_t window_left(const SimSocket& socket);
  void enqueue(SimSocket& socket, SimSegment segment);
  // Throws away all the socket's outgoing segments (a reset).
  void drop_outgoing(SimSocket& socket);
  // Throws away the segments still in the buffer, not on the wire (a crash, a close that
  // resets).
  void drop_unsent(SimSocket& socket);
  void schedule_delivery(SimSocket& socket);
  // The delivery event of socket id's front segment (or of its orphan's).
  void deliver(std::int64_t id);
  void deliver_front(SimSocket& socket, SimSocket& peer);
  void deliver_orphan(std::int64_t id);
  // What a segment does where it lands: bytes, end of stream, or a reset.
  void land(const SimSegment& segment, SimSocket& peer);
  // A reset lands at socket (the caller erases it if it was closed and is now drained).
  void receive_reset(SimSocket& socket);
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
  // Segments a crashed socket had on the wire, by its id: they land in order (at their due
  // times) unless the link or the peer is gone by then.
  struct Orphan {
    HostState* from = nullptr;
    std::int64_t peer_id = -1;
    std::deque<SimSegment> segments;
    // Invariant: == the sum of segments[i].bytes.size().
    std::size_t bytes = 0;
  };
  std::map<std::int64_t, Orphan> orphans_;
  // Invariant: == the sum of orphans_[i].bytes.
  std::uint64_t orphan_bytes_ = 0;
  std::uint64_t messages_delivered_ = 0;
  std::uint64_t next_message_id_ = 1;
};

}  // namespace trellis::sim::internal
