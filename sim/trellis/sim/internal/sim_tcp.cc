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

SimTcp::SimTcp(SimEventLoop& loop, SimSocketTable& sockets, SimLinks& links,
               const NetworkConfig& config, Trace* trace)
    : loop_(loop), sockets_(sockets), links_(links), config_(config), trace_(trace) {
  TRELLIS_ASSERT(config_.tcp_window_bytes > 0);
  TRELLIS_ASSERT(config_.listen_backlog_max >= 1);
}

void SimTcp::check_ledger() const {
  TRELLIS_ASSERT(ledger_.sent == ledger_.delivered + ledger_.in_flight + ledger_.dropped);
#if defined(TRELLIS_SLOW_ASSERTS)
  std::uint64_t outgoing = 0;
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
  socket.state = State::kConnecting;
  socket.peer = address;
  socket.connect_deadline = loop_.now() + config_.connect_timeout;
  const std::int64_t id = socket.id;
  const std::uint64_t incarnation = socket.incarnation;
  loop_.at(loop_.now() + links_.latency(socket.host, sockets_.host_at(address, socket.host)),
           [this, id, address, incarnation] { syn_arrives(id, address, incarnation); });
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
  if (!socket.received.empty() && !socket.shut_read) {
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
    if (!socket.reset) enqueue(socket, SimSegment{{}, true, {}});
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
  if (socket.state == State::kConnected && !socket.shut_write && !socket.reset) {
    socket.shut_write = true;
    enqueue(socket, SimSegment{{}, true, {}});
  }
  erase_if_drained(socket);
}

void SimTcp::host_crashed(const HostState& host) {
  for (std::int64_t id : sockets_.sockets_of(host)) {
    SimSocket& socket = *sockets_.find(id);
    socket.delivery_scheduled = false;  // its pending delivery finds the socket gone
    drop_outgoing(socket);
  }
}

// ---- delivery ------------------------------------------------------------------------------

void SimTcp::enqueue(SimSocket& socket, SimSegment segment) {
  TRELLIS_ASSERT(segment.fin || !segment.bytes.empty());
  const SimSocket* peer = sockets_.find(socket.peer_id);
  segment.due =
      std::max(loop_.now() + links_.latency(socket.host, peer != nullptr ? peer->host : nullptr),
               socket.last_due);
  segment.id = next_message_id_++;
  if (trace_ != nullptr) trace_->record(segment.fin ? "tcp fin send" : "tcp send", segment.id);
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

void SimTcp::schedule_delivery(SimSocket& socket) {
  if (socket.delivery_scheduled || socket.outgoing.empty()) return;
  socket.delivery_scheduled = true;
  const std::int64_t id = socket.id;
  loop_.at(std::max(loop_.now(), socket.outgoing.front().due), [this, id] { deliver(id); });
}

void SimTcp::deliver(std::int64_t id) {
  SimSocket* socket = sockets_.find(id);
  if (socket == nullptr) return;
  socket->delivery_scheduled = false;
  if (socket->outgoing.empty()) return;
  const Time now = loop_.now();
  SimSocket* peer = sockets_.find(socket->peer_id);
  HostState* peer_host = peer != nullptr ? peer->host : nullptr;
  if (peer != nullptr && peer_host->alive && !links_.up(*socket->host, *peer_host, now)) {
    // Partitioned or clogged: TCP retransmits later; nothing is lost.
    socket->delivery_scheduled = true;
    loop_.at(links_.retry_time(*socket->host, *peer_host, now), [this, id] { deliver(id); });
    return;
  }
  if (peer == nullptr || peer->incarnation != peer_host->incarnation || peer->closed_by_user) {
    // Nobody there any more (closed, or its host crashed and its sockets are gone): reset,
    // unless this is a FIN to a closed socket: the orderly end of the connection.
    const bool orderly_end =
        peer != nullptr && peer->closed_by_user && socket->outgoing.front().fin;
    drop_outgoing(*socket);
    if (!orderly_end) {
      socket->error = ECONNRESET;
      socket->reset = true;
      poke(*socket);
    }
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
  if (segment.fin) {
    TRELLIS_ASSERT(socket.outgoing.empty());  // a FIN is the last segment
    peer.fin_received = true;
  } else {
    peer.received.insert(peer.received.end(), segment.bytes.begin(), segment.bytes.end());
  }
  check_ledger();
  ++messages_delivered_;
  if (trace_ != nullptr) {
    trace_->record(segment.fin ? "tcp fin deliver" : "tcp deliver", segment.id);
  }
  poke(peer);
  poke(socket);
  schedule_delivery(socket);
  erase_if_drained(socket);
}

void SimTcp::reset_peer_of(SimSocket& socket) {
  SimSocket* peer = sockets_.find(socket.peer_id);
  if (peer == nullptr) return;
  const std::int64_t peer_id = peer->id;
  loop_.at(loop_.now() + links_.latency(socket.host, peer->host), [this, peer_id] {
    if (SimSocket* p = sockets_.find(peer_id)) {
      p->error = ECONNRESET;
      p->reset = true;
      poke(*p);
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
  server.local = *SocketAddress::parse(server_host.address, target.port());
  server.peer = client.local;
  server.peer_id = client.id;
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
                 s->error = ECONNRESET;
                 s->reset = true;
                 poke(*s);
               }
               return;
             }
             c->state = State::kConnected;
             c->peer_id = server_id;
             poke(*c);
           });
}

}  // namespace trellis::sim::internal
