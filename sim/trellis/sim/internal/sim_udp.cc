#include "trellis/sim/internal/sim_udp.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {

SimUdp::SimUdp(SimEventLoop& loop, SimSocketTable& sockets, SimLinks& links, Prng& prng,
               const NetworkConfig& config, Trace* trace)
    : loop_(loop), sockets_(sockets), links_(links), prng_(prng), config_(config), trace_(trace) {
  TRELLIS_ASSERT(config_.datagram_loss_ppm <= 1'000'000);
  TRELLIS_ASSERT(config_.datagram_duplicate_ppm <= 1'000'000);
}

void SimUdp::check_ledger() const {
  TRELLIS_ASSERT(ledger_.sent == ledger_.delivered + ledger_.in_flight + ledger_.dropped);
}

bool SimUdp::readable(const SimSocket& s) {
  TRELLIS_ASSERT(s.type == SOCK_DGRAM);
  if (s.error != 0 || s.reset) return true;
  return !s.datagrams.empty();
}

bool SimUdp::writable(const SimSocket& s) {
  TRELLIS_ASSERT(s.type == SOCK_DGRAM);
  return true;  // datagrams never wait for room: they are dropped instead
}

void SimUdp::poke(SimSocket& socket) {
  if (socket.reader != nullptr && readable(socket)) loop_.wake(socket.reader);
  if (socket.writer != nullptr && writable(socket)) loop_.wake(socket.writer);
}

int SimUdp::connect(SimSocket& socket, const SocketAddress& address) {
  TRELLIS_ASSERT(socket.type == SOCK_DGRAM);
  if (!socket.bound()) {
    if (const int e = sockets_.bind_port(socket, 0); e != 0) return e;
  }
  // As Linux's ip4_datagram_connect: a wildcard-bound socket takes the route's source
  // address, and from now on receives only from its peer and hears port-unreachable.
  socket.local = sockets_.source_address(socket, address);
  socket.peer = SimSocketTable::destination(address);
  TRELLIS_ASSERT(socket.bound() && !socket.peer.empty());
  return 0;
}

IoResult<std::size_t> SimUdp::send(SimSocket& socket, const void* data, std::size_t size) {
  if (socket.peer.empty()) return {0, EDESTADDRREQ};
  return send_to(socket, data, size, socket.peer);
}

IoResult<std::size_t> SimUdp::send_to(SimSocket& socket, const void* data, std::size_t size,
                                      const SocketAddress& to) {
  TRELLIS_ASSERT(socket.type == SOCK_DGRAM);
  if (to.family() != AF_INET) return {0, EAFNOSUPPORT};
  // A pending error (a port-unreachable a connected socket heard) is reported once.
  if (socket.error != 0) return {0, std::exchange(socket.error, 0)};
  if (!socket.bound()) {
    if (const int e = sockets_.bind_port(socket, 0); e != 0) return {0, e};
  }
  if (size > kDatagramSizeMax) return {0, EMSGSIZE};
  SimDatagram datagram{sockets_.source_address(socket, to), std::vector<std::byte>(size)};
  // An empty datagram is a datagram too; memcpy of an empty vector's null data() is not.
  if (size > 0) std::memcpy(datagram.bytes.data(), data, size);
  TRELLIS_ASSERT(datagram.bytes.size() == size);
  HostState* from_host = socket.host;
  const std::int64_t from_id = socket.id;
  const std::string ip = to.host();
  const std::uint16_t port = to.port();
  const int copies = prng_.chance(config_.datagram_duplicate_ppm, 1'000'000) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    ++ledger_.sent;
    if (prng_.chance(config_.datagram_loss_ppm, 1'000'000)) {
      ++ledger_.dropped;
      if (trace_ != nullptr) trace_->record("datagram lost", port);
      continue;
    }
    Duration delay = links_.latency(from_host, sockets_.host_at(to, from_host));
    if (prng_.chance(config_.datagram_reorder_ppm, 1'000'000)) {
      delay += Duration(static_cast<Duration::rep>(
          prng_.below(static_cast<std::uint64_t>(10 * config_.latency_max.count()) + 1)));
    }
    ++ledger_.in_flight;
    loop_.at(loop_.now() + delay, [this, from_host, from_id, ip, port, datagram] {
      arrive(from_host, from_id, ip, port, datagram);
    });
  }
  check_ledger();
  return {size, 0};
}

void SimUdp::arrive(HostState* from_host, std::int64_t from_id, const std::string& ip,
                    std::uint16_t port, const SimDatagram& datagram) {
  TRELLIS_ASSERT(ledger_.in_flight > 0);
  --ledger_.in_flight;
  // A datagram on the wire lands even if its sender crashed since (network_config.h).
  HostState* target = sockets_.host_at(ip, from_host);
  if (target == nullptr || !target->alive || !links_.up(*from_host, *target, loop_.now())) {
    ++ledger_.dropped;
    check_ledger();
    if (trace_ != nullptr) trace_->record("datagram dropped", port);
    return;
  }
  SimSocket* s = sockets_.bound_to(target->index, SOCK_DGRAM, port);
  // A connected socket is not there for anyone but its peer (Linux's socket lookup).
  if (s != nullptr && !s->peer.empty() && s->peer != datagram.from) s = nullptr;
  if (s == nullptr || s->closed_by_user) {
    ++ledger_.dropped;
    check_ledger();
    port_unreachable(*target, from_host, from_id);
    return;
  }
  if (s->datagrams.size() >= config_.datagram_queue_max) {
    ++ledger_.dropped;
    check_ledger();
    return;
  }
  s->datagrams.push_back(datagram);
  TRELLIS_ASSERT(s->datagrams.size() <= config_.datagram_queue_max);
  ++ledger_.delivered;
  check_ledger();
  poke(*s);
}

void SimUdp::port_unreachable(HostState& at, HostState* to_host, std::int64_t to_id) {
  // The ICMP port-unreachable travels back; only a connected socket hears it (Linux's
  // __udp4_lib_err), as ECONNREFUSED from its next call.
  loop_.at(loop_.now() + links_.latency(&at, to_host), [this, &at, to_host, to_id] {
    SimSocket* s = sockets_.find(to_id);
    if (s == nullptr || s->closed_by_user || s->peer.empty()) return;
    TRELLIS_ASSERT(s->host == to_host && s->type == SOCK_DGRAM);
    if (!to_host->alive || !links_.up(at, *to_host, loop_.now())) return;
    if (trace_ != nullptr) trace_->record("datagram port unreachable", s->local.port());
    s->error = ECONNREFUSED;
    poke(*s);
  });
}

IoResult<ReceivedDatagram> SimUdp::receive_from(SimSocket& socket, void* buffer, std::size_t size) {
  TRELLIS_ASSERT(socket.type == SOCK_DGRAM);
  // A pending error (port unreachable) is reported once, before any datagram.
  if (socket.error != 0) return {{}, std::exchange(socket.error, 0)};
  if (socket.datagrams.empty()) return {{}, EAGAIN};
  SimDatagram datagram = std::move(socket.datagrams.front());
  socket.datagrams.pop_front();
  // As recvfrom(2): a datagram longer than the buffer is truncated, the rest discarded.
  const std::size_t n = std::min(size, datagram.bytes.size());
  TRELLIS_ASSERT(n <= size && n <= kDatagramSizeMax);
  // An empty datagram: nothing to copy (and its data() may be null).
  if (n > 0) std::memcpy(buffer, datagram.bytes.data(), n);
  return {ReceivedDatagram{n, datagram.from}, 0};
}

int SimUdp::shutdown(const SimSocket& socket, int how) {
  TRELLIS_ASSERT(socket.type == SOCK_DGRAM);
  return how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR ? ENOTCONN : EINVAL;
}

void SimUdp::close(SimSocket& socket) {
  TRELLIS_ASSERT(socket.type == SOCK_DGRAM && !socket.closed_by_user);
  socket.closed_by_user = true;
  sockets_.erase(socket.id);
}

}  // namespace trellis::sim::internal
