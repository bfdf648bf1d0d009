#include "trellis/sim/internal/sim_tcp.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {

using State = SimSocket::State;

namespace {

// A segment without bytes: a FIN, or a reset.
SimSegment control_segment(bool fin, bool rst) {
  TRELLIS_ASSERT(fin != rst);
  SimSegment segment;
  segment.fin = fin;
  segment.rst = rst;
  return segment;
}

}  // namespace

SimTcp::SimTcp(SimEventLoop& loop, SimSocketTable& sockets, SimLinks& links,
               const NetworkConfig& config, Trace* trace)
    : loop_(loop), sockets_(sockets), links_(links), config_(config), trace_(trace) {
  TRELLIS_ASSERT(config_.tcp_window_bytes > 0);
  TRELLIS_ASSERT(config_.listen_backlog_max >= 1);
}

void SimTcp::check_ledger() const {
  TRELLIS_ASSERT(ledger_.sent == ledger_.delivered + ledger_.in_flight + ledger_.dropped);
  TRELLIS_ASSERT(orphan_bytes_ <= ledger_.in_flight);
#if defined(TRELLIS_SLOW_ASSERTS)
  std::uint64_t outgoing = orphan_bytes_;
  sockets_.for_each([&](const SimSocket& socket) {
    TRELLIS_ASSERT(socket.outgoing_consistent());
    outgoing += socket.outgoing_bytes;
  });
  TRELLIS_ASSERT_SLOW(outgoing == ledger_.in_flight);
#endif
}

// ---- readiness -----------------------------------------------------------------------------

bool SimTcp::readable(const SimSocket& s) {
  TRELLIS_ASSERT(s.type == SOCK_STREAM);
  if (s.error != 0 || s.reset) return true;
  switch (s.state) {
    case State::kListening:
      return !s.accept_queue.empty();
    case State::kConnected:
      return !s.received.empty() || s.fin_received || s.shut_read;
    case State::kConnecting:
      return false;
    case State::kFresh:
      return true;
  }
  return true;
}

bool SimTcp::writable(const SimSocket& s) {
  TRELLIS_ASSERT(s.type == SOCK_STREAM);
  if (s.error != 0 || s.reset) return true;
  switch (s.state) {
    case State::kConnected:
      return s.shut_write || window_left(s) > 0;
    case State::kListening:
    case State::kConnecting:
      return false;
    case State::kFresh:
      return true;
  }
  return true;
}

void SimTcp::poke(SimSocket& socket) {
  if (socket.reader != nullptr && readable(socket)) loop_.wake(socket.reader);
  if (socket.writer != nullptr && writable(socket)) loop_.wake(socket.writer);
}

std::size_t SimTcp::window_left(const SimSocket& socket) {
  std::size_t used = socket.outgoing_bytes;
  if (const SimSocket* peer = sockets_.find(socket.peer_id)) used += peer->received.size();
  return used >= config_.tcp_window_bytes ? 0 : config_.tcp_window_bytes - used;
}

// ---- calls ---------------------------------------------------------------------------------

int SimTcp::listen(SimSocket& socket, int backlog) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  if (socket.state != State::kFresh && socket.state != State::kListening) return EINVAL;
  if (!socket.bound()) {
    if (const int e = sockets_.bind_port(socket, 0); e != 0) return e;
  }
  socket.state = State::kListening;
  socket.backlog = std::clamp(backlog, 1, config_.listen_backlog_max);
  return 0;
}

IoResult<AcceptedSocket> SimTcp::accept(SimSocket& socket) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  if (socket.state != State::kListening) return {{}, EINVAL};
  while (!socket.accept_queue.empty()) {
    const std::int64_t id = socket.accept_queue.front();
    socket.accept_queue.pop_front();
    if (SimSocket* accepted = sockets_.find(id)) {
      TRELLIS_ASSERT(accepted->host == socket.host && accepted->state == State::kConnected);
      return {AcceptedSocket{IoHandle{id}, accepted->peer}, 0};
    }
  }
  return {{}, EAGAIN};
}

int SimTcp::connect(SimSocket& socket, const SocketAddress& address) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  switch (socket.state) {
    case State::kConnecting:
      return EALREADY;
    case State::kConnected:
      return EISCONN;
    case State::kListening:
      return EINVAL;
    case State::kFresh:
      break;
  }
  if (!socket.bound()) {
    if (const int e = sockets_.bind_port(socket, 0); e != 0) return e;
  }
  const SocketAddress target = SimSocketTable::destination(address);
  // The route fixes a wildcard-bound socket's source address (127.0.0.1 to itself).
  socket.local = sockets_.source_address(socket, target);
  TRELLIS_ASSERT(socket.bound());
  socket.state = State::kConnecting;
  socket.peer = target;
  socket.connect_deadline = loop_.now() + config_.connect_timeout;
  const std::int64_t id = socket.id;
  const std::uint64_t incarnation = socket.incarnation;
  loop_.at(loop_.now() + links_.latency(socket.host, sockets_.host_at(target, socket.host)),
           [this, id, target, incarnation] { syn_arrives(id, target, incarnation); });
  return EINPROGRESS;
}

IoResult<std::size_t> SimTcp::send(SimSocket& socket, const void* data, std::size_t size) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  // A pending error (a reset) is reported once; after a reset, sends fail with EPIPE.
  if (socket.error != 0) return {0, std::exchange(socket.error, 0)};
  if (socket.state != State::kConnected) return {0, ENOTCONN};
  if (socket.shut_write || socket.reset) return {0, EPIPE};
  if (size == 0) return {0, 0};
  const std::size_t room = window_left(socket);
  if (room == 0) return {0, EAGAIN};
  const std::size_t n = std::min(size, room);
  SimSegment segment;
  segment.bytes.resize(n);
  std::memcpy(segment.bytes.data(), data, n);
  enqueue(socket, std::move(segment));
  return {n, 0};
}

IoResult<std::size_t> SimTcp::recv(SimSocket& socket, void* buffer, std::size_t size) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  if (socket.state != State::kConnected) {
    if (socket.error != 0) return {0, std::exchange(socket.error, 0)};
    return {0, ENOTCONN};
  }
  // Queued data is read even after shutdown(SHUT_RD), as Linux's tcp_recvmsg does; only
  // then does the shut-down side read end of stream.
  if (!socket.received.empty()) {
    const std::size_t n = std::min(size, socket.received.size());
    std::copy_n(socket.received.begin(), n, static_cast<std::byte*>(buffer));
    socket.received.erase(socket.received.begin(),
                          socket.received.begin() + static_cast<std::ptrdiff_t>(n));
    // Reading opens the sender's window.
    if (SimSocket* peer = sockets_.find(socket.peer_id)) poke(*peer);
    return {n, 0};
  }
  // A pending error (a reset) is reported once; after it, reads see end of stream.
  if (socket.error != 0) return {0, std::exchange(socket.error, 0)};
  if (socket.fin_received || socket.shut_read || socket.reset) return {0, 0};
  return {0, EAGAIN};
}

int SimTcp::shutdown(SimSocket& socket, int how) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return EINVAL;
  if (socket.state != State::kConnected) return ENOTCONN;
  if (how == SHUT_RD || how == SHUT_RDWR) socket.shut_read = true;
  if ((how == SHUT_WR || how == SHUT_RDWR) && !socket.shut_write) {
    socket.shut_write = true;
    if (!socket.reset) enqueue(socket, control_segment(true, false));
  }
  poke(socket);
  return 0;
}

void SimTcp::close(SimSocket& socket) {
  TRELLIS_ASSERT(socket.type == SOCK_STREAM && !socket.closed_by_user);
  TRELLIS_ASSERT(socket.reader == nullptr && socket.writer == nullptr);  // told first
  sockets_.unbind(socket);
  if (socket.state == State::kListening) {
    // Connections never accepted are reset.
    for (std::int64_t pending : socket.accept_queue) {
      if (SimSocket* s = sockets_.find(pending)) {
        reset_peer_of(*s);
        sockets_.erase(s->id);
      }
    }
    socket.accept_queue.clear();
  }
  socket.closed_by_user = true;
  if (socket.state == State::kConnected && !socket.reset) {
    if (!socket.received.empty()) {
      // Unread data: Linux's tcp_close sends a reset instead of a FIN, and what was not sent
      // yet is thrown away (what is on the wire still lands, before the reset).
      socket.received.clear();
      drop_unsent(socket);
      socket.shut_write = true;
      enqueue(socket, control_segment(false, true));
    } else if (!socket.shut_write) {
      socket.shut_write = true;
      enqueue(socket, control_segment(true, false));
    }
  }
  erase_if_drained(socket);
}

void SimTcp::host_crashed(const HostState& host) {
  for (std::int64_t id : sockets_.sockets_of(host)) {
    SimSocket& socket = *sockets_.find(id);
    // What waits in the buffer is lost with the host; what is on the wire lands (an orphan,
    // driven by the delivery event already scheduled: deliver() finds the socket gone).
    drop_unsent(socket);
    if (!socket.outgoing.empty()) {
      TRELLIS_ASSERT(socket.delivery_scheduled && !socket.held_back);
      Orphan& orphan = orphans_[id];
      TRELLIS_ASSERT(orphan.segments.empty());  // socket ids are never reused
      orphan.from = socket.host;
      orphan.peer_id = socket.peer_id;
      orphan.segments = std::move(socket.outgoing);
      orphan.bytes = socket.outgoing_bytes;
      orphan_bytes_ += socket.outgoing_bytes;
      socket.outgoing.clear();
      socket.outgoing_bytes = 0;
    }
    socket.delivery_scheduled = false;
    check_ledger();
  }
}

// ---- delivery ------------------------------------------------------------------------------

void SimTcp::enqueue(SimSocket& socket, SimSegment segment) {
  TRELLIS_ASSERT(segment.fin || segment.rst || !segment.bytes.empty());
  TRELLIS_ASSERT(!segment.rst || segment.bytes.empty());
  const SimSocket* peer = sockets_.find(socket.peer_id);
  const Time now = loop_.now();
  segment.due = std::max(now + links_.latency(socket.host, peer != nullptr ? peer->host : nullptr),
                         socket.last_due);
  // Onto the wire at once if the link is up and nothing before it waits in the buffer.
  segment.on_wire = !socket.held_back &&
                    (socket.outgoing.empty() || socket.outgoing.back().on_wire) &&
                    (peer == nullptr || links_.up(*socket.host, *peer->host, now));
  segment.id = next_message_id_++;
  if (trace_ != nullptr) {
    trace_->record(segment.rst   ? "tcp rst send"
                   : segment.fin ? "tcp fin send"
                                 : "tcp send",
                   segment.id);
  }
  socket.last_due = segment.due;
  socket.outgoing_bytes += segment.bytes.size();
  ledger_.sent += segment.bytes.size();
  ledger_.in_flight += segment.bytes.size();
  socket.outgoing.push_back(std::move(segment));
  check_ledger();
  schedule_delivery(socket);
}

void SimTcp::drop_outgoing(SimSocket& socket) {
  TRELLIS_ASSERT(ledger_.in_flight >= socket.outgoing_bytes);
  ledger_.in_flight -= socket.outgoing_bytes;
  ledger_.dropped += socket.outgoing_bytes;
  socket.outgoing.clear();
  socket.outgoing_bytes = 0;
  check_ledger();
}

void SimTcp::drop_unsent(SimSocket& socket) {
  std::size_t dropped = 0;
  while (!socket.outgoing.empty() && !socket.outgoing.back().on_wire) {
    dropped += socket.outgoing.back().bytes.size();
    socket.outgoing.pop_back();
  }
  TRELLIS_ASSERT(socket.outgoing_bytes >= dropped && ledger_.in_flight >= dropped);
  socket.outgoing_bytes -= dropped;
  ledger_.in_flight -= dropped;
  ledger_.dropped += dropped;
  TRELLIS_ASSERT_SLOW(socket.outgoing_consistent());
  check_ledger();
}

void SimTcp::schedule_delivery(SimSocket& socket) {
  if (socket.delivery_scheduled || socket.outgoing.empty()) return;
  socket.delivery_scheduled = true;
  const std::int64_t id = socket.id;
  loop_.at(std::max(loop_.now(), socket.outgoing.front().due), [this, id] { deliver(id); });
}

void SimTcp::deliver(std::int64_t id) {
  SimSocket* socket = sockets_.find(id);
  if (socket == nullptr) {
    deliver_orphan(id);  // its host crashed with segments on the wire
    return;
  }
  socket->delivery_scheduled = false;
  if (socket->outgoing.empty()) {
    erase_if_drained(*socket);  // a reset emptied it meanwhile
    return;
  }
  const Time now = loop_.now();
  SimSocket* peer = sockets_.find(socket->peer_id);
  HostState* peer_host = peer != nullptr ? peer->host : nullptr;
  if (peer != nullptr && peer_host->alive && !links_.up(*socket->host, *peer_host, now)) {
    // Partitioned or clogged: what was sent is lost on the link and waits in the buffer for
    // TCP's retransmission (a crash now loses it); nothing is lost while both hosts live.
    socket->held_back = true;
    for (SimSegment& segment : socket->outgoing) segment.on_wire = false;
    socket->delivery_scheduled = true;
    loop_.at(links_.retry_time(*socket->host, *peer_host, now), [this, id] { deliver(id); });
    return;
  }
  if (socket->held_back) {
    // Retransmitted over the healed link: on the wire again.
    socket->held_back = false;
    for (SimSegment& segment : socket->outgoing) segment.on_wire = true;
  }
  if (peer == nullptr || peer->incarnation != peer_host->incarnation || peer->closed_by_user) {
    // Nobody there any more (closed, or its host crashed and its sockets are gone): reset,
    // unless this is a FIN to a closed socket (the orderly end of the connection) or a
    // reset (never answered).
    const SimSegment& front = socket->outgoing.front();
    const bool silent = front.rst || (peer != nullptr && peer->closed_by_user && front.fin);
    drop_outgoing(*socket);
    if (!silent) receive_reset(*socket);
    erase_if_drained(*socket);
    return;
  }
  deliver_front(*socket, *peer);
}

void SimTcp::deliver_front(SimSocket& socket, SimSocket& peer) {
  SimSegment segment = std::move(socket.outgoing.front());
  socket.outgoing.pop_front();
  TRELLIS_ASSERT(socket.outgoing_bytes >= segment.bytes.size());
  socket.outgoing_bytes -= segment.bytes.size();
  ledger_.in_flight -= segment.bytes.size();
  ledger_.delivered += segment.bytes.size();
  // A FIN is the last segment, but for a reset after it; a reset is the last.
  TRELLIS_ASSERT(!segment.rst || socket.outgoing.empty());
  TRELLIS_ASSERT(!segment.fin || socket.outgoing.empty() ||
                 (socket.outgoing.size() == 1 && socket.outgoing.front().rst));
  check_ledger();
  land(segment, peer);
  poke(socket);
  schedule_delivery(socket);
  erase_if_drained(socket);
}

void SimTcp::land(const SimSegment& segment, SimSocket& peer) {
  // The peer may still be connecting: its SYN-ACK can land after the server's first data.
  TRELLIS_ASSERT(!peer.closed_by_user && peer.state != State::kListening);
  if (segment.rst) {
    receive_reset(peer);
  } else if (segment.fin) {
    peer.fin_received = true;
  } else {
    peer.received.insert(peer.received.end(), segment.bytes.begin(), segment.bytes.end());
  }
  ++messages_delivered_;
  if (trace_ != nullptr) {
    trace_->record(segment.rst   ? "tcp rst deliver"
                   : segment.fin ? "tcp fin deliver"
                                 : "tcp deliver",
                   segment.id);
  }
  poke(peer);
}

void SimTcp::deliver_orphan(std::int64_t id) {
  auto it = orphans_.find(id);
  if (it == orphans_.end()) return;
  Orphan& orphan = it->second;
  TRELLIS_ASSERT(!orphan.segments.empty());
  SimSegment segment = std::move(orphan.segments.front());
  orphan.segments.pop_front();
  const std::size_t size = segment.bytes.size();
  TRELLIS_ASSERT(orphan.bytes >= size && orphan_bytes_ >= size && ledger_.in_flight >= size);
  orphan.bytes -= size;
  orphan_bytes_ -= size;
  ledger_.in_flight -= size;
  const Time now = loop_.now();
  SimSocket* peer = sockets_.find(orphan.peer_id);
  const bool lands = peer != nullptr && peer->host->alive &&
                     peer->incarnation == peer->host->incarnation && !peer->closed_by_user &&
                     links_.up(*orphan.from, *peer->host, now);
  if (!lands) {
    // Lost on the way (a partition, nobody there), and nobody is left to retransmit: the
    // rest cannot land in order either.
    ledger_.dropped += size + orphan.bytes;
    ledger_.in_flight -= orphan.bytes;
    orphan_bytes_ -= orphan.bytes;
    if (trace_ != nullptr) trace_->record("tcp orphan lost", segment.id);
    orphans_.erase(it);
    check_ledger();
    return;
  }
  ledger_.delivered += size;
  check_ledger();
  land(segment, *peer);
  if (orphan.segments.empty()) {
    TRELLIS_ASSERT(orphan.bytes == 0);
    orphans_.erase(it);
    return;
  }
  loop_.at(std::max(now, orphan.segments.front().due), [this, id] { deliver(id); });
}

void SimTcp::receive_reset(SimSocket& socket) {
  // Linux's tcp_reset: EPIPE once the peer's FIN came (CLOSE_WAIT), else ECONNRESET; the
  // socket's unsent data is thrown away.
  socket.error = socket.fin_received ? EPIPE : ECONNRESET;
  socket.reset = true;
  drop_outgoing(socket);
  TRELLIS_ASSERT(socket.outgoing.empty() && socket.outgoing_bytes == 0);
  poke(socket);
}

void SimTcp::reset_peer_of(SimSocket& socket) {
  SimSocket* peer = sockets_.find(socket.peer_id);
  if (peer == nullptr) return;
  const std::int64_t peer_id = peer->id;
  loop_.at(loop_.now() + links_.latency(socket.host, peer->host), [this, peer_id] {
    if (SimSocket* p = sockets_.find(peer_id)) {
      receive_reset(*p);
      erase_if_drained(*p);
    }
  });
}

void SimTcp::erase_if_drained(SimSocket& socket) {
  if (socket.closed_by_user && socket.outgoing.empty() && !socket.delivery_scheduled) {
    sockets_.erase(socket.id);
  }
}

// ---- connection set-up ---------------------------------------------------------------------

void SimTcp::syn_arrives(std::int64_t client_id, SocketAddress target, std::uint64_t incarnation) {
  SimSocket* client = sockets_.find(client_id);
  if (client == nullptr || client->incarnation != incarnation ||
      client->state != State::kConnecting || client->closed_by_user) {
    return;  // the attempt was abandoned (closed, crashed)
  }
  const Time now = loop_.now();
  HostState* server_host = sockets_.host_at(target, client->host);
  if (server_host == nullptr || !server_host->alive ||
      !links_.up(*client->host, *server_host, now)) {
    retry_or_time_out(*client, target, now);
    return;
  }
  SimSocket* listener = sockets_.bound_to(server_host->index, SOCK_STREAM, target.port());
  if (listener == nullptr || listener->state != State::kListening || listener->closed_by_user) {
    // Refused: the reset travels back.
    loop_.at(now + links_.latency(server_host, client->host), [this, client_id, incarnation] {
      fail_connect(client_id, incarnation, ECONNREFUSED);
    });
    return;
  }
  if (static_cast<int>(listener->accept_queue.size()) >= listener->backlog) {
    retry_or_time_out(*client, target, now);  // SYN dropped on a full backlog; it retransmits
    return;
  }
  open_server_side(*client, *listener, *server_host, target, now);
}

void SimTcp::retry_or_time_out(SimSocket& client, const SocketAddress& target, Time now) {
  const std::int64_t client_id = client.id;
  const std::uint64_t incarnation = client.incarnation;
  if (now + config_.retransmit_timeout > client.connect_deadline) {
    // No answer before the deadline: the attempt times out then.
    loop_.at(client.connect_deadline,
             [this, client_id, incarnation] { fail_connect(client_id, incarnation, ETIMEDOUT); });
    return;
  }
  loop_.at(now + config_.retransmit_timeout,
           [this, client_id, target, incarnation] { syn_arrives(client_id, target, incarnation); });
}

void SimTcp::fail_connect(std::int64_t client_id, std::uint64_t incarnation, int error) {
  TRELLIS_ASSERT(error == ECONNREFUSED || error == ETIMEDOUT);
  SimSocket* c = sockets_.find(client_id);
  if (c == nullptr || c->incarnation != incarnation || c->state != State::kConnecting) return;
  c->error = error;
  c->state = State::kFresh;
  sockets_.unbind(*c);
  poke(*c);
}

void SimTcp::open_server_side(SimSocket& client, SimSocket& listener, HostState& server_host,
                              const SocketAddress& target, Time now) {
  // The server side of the connection exists from now on, waiting in the accept queue.
  SimSocket& server = sockets_.open(server_host, SOCK_STREAM);
  server.state = State::kConnected;
  // Its address is the one the client connected to (on a wildcard listener too); it
  // inherits the listener's options, as Linux's accepted sockets do.
  server.local = target;
  server.peer = client.local;
  server.peer_id = client.id;
  server.options = listener.options;
  TRELLIS_ASSERT(server.local.port() == listener.local.port());
  const std::int64_t server_id = server.id;
  const std::int64_t client_id = client.id;
  const std::uint64_t incarnation = client.incarnation;
  listener.accept_queue.push_back(server_id);
  poke(listener);
  // The SYN-ACK travels back; the client is connected when it lands.
  loop_.at(now + links_.latency(&server_host, client.host),
           [this, client_id, server_id, incarnation] {
             SimSocket* c = sockets_.find(client_id);
             if (c == nullptr || c->incarnation != incarnation || c->state != State::kConnecting) {
               // The client is gone: its half-open peer gets a reset.
               if (SimSocket* s = sockets_.find(server_id)) {
                 receive_reset(*s);
                 erase_if_drained(*s);
               }
               return;
             }
             c->state = State::kConnected;
             c->peer_id = server_id;
             poke(*c);
           });
}

}  // namespace trellis::sim::internal
