// trellis/sim/network_config.h — NetworkConfig: the simulated network's knobs.
//
// Fault model. What can go wrong, and which knob: per-packet latency is uniform in
// [latency_min, latency_max] (TCP keeps order per connection: a later segment never
// overtakes an earlier one); partitions (World::partition, symmetric or one-way) hold TCP
// segments and connection attempts back until healed (TCP retransmits every
// retransmit_timeout), and drop datagrams; a clog (World::clog) stalls a link for a while and
// loses nothing; datagrams are also lost, duplicated and reordered with the probabilities
// below.
//
// A crashed host's sockets vanish without a FIN. What it had already put on the wire (TCP
// segments sent over a link that was up, FINs and resets included; datagrams) still lands
// at its due time, as on a real network; what was still in its buffer (segments a partition
// or clog was holding back for a retransmission) is lost with it, and so is a segment on
// the wire whose link fails before it lands (nobody is left to retransmit it). Its peers
// then see nothing more: a reset when they send, or their own timeouts.
//
// What stays recoverable: TCP never loses, reorders or duplicates bytes of a live
// connection; an orderly close always delivers a FIN after the data. A close() with
// received data unread sends a reset instead (after what is already on the wire; what was
// not sent yet is thrown away), as Linux does: the peer's next call fails with ECONNRESET,
// or EPIPE if it had already read the end of the stream.
//
// Simplifications (the conformance suite, tests/conformance/, checks the rest against
// Linux): a port is bound per host and protocol whatever the address (127.0.0.1:p and
// 0.0.0.0:p conflict, and a listener bound to one address also accepts connections made to
// the host's other one); socket options are recorded and read back but change nothing
// (set_option refuses, with ENOPROTOOPT, every option outside a small table: see
// SimSocketTable::set_option); no Nagle, no keep-alive probes, no TIME_WAIT.
#pragma once

#include <chrono>
#include <cstddef>

#include "trellis/core/time.h"

namespace trellis::sim {

struct NetworkConfig {
  Duration latency_min = std::chrono::microseconds(100);
  Duration latency_max = std::chrono::milliseconds(2);
  // Bytes a TCP sender may have in flight plus unread at the receiver before send() says
  // EAGAIN (backpressure).
  std::size_t tcp_window_bytes = 64 * 1024;
  // How often a held-back segment or connection attempt is retried.
  Duration retransmit_timeout = std::chrono::milliseconds(200);
  // A connection attempt that gets no answer fails with ETIMEDOUT after this long.
  Duration connect_timeout = std::chrono::seconds(10);
  // Listen backlog cap (connections beyond it are retried by the connecting side).
  int listen_backlog_max = 128;
  // Datagrams: chance in parts per million of loss, duplication, and of an extra delay of
  // up to 10 * latency_max (reordering).
  unsigned datagram_loss_ppm = 0;
  unsigned datagram_duplicate_ppm = 0;
  unsigned datagram_reorder_ppm = 0;
  // Datagrams queued at a socket beyond this are dropped, as a full receive buffer would.
  std::size_t datagram_queue_max = 256;
  // Name resolution takes this long.
  Duration resolve_latency = std::chrono::microseconds(500);
};

}  // namespace trellis::sim
