#include "trellis/sim/internal/sim_backend.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {
namespace {

constexpr std::uint16_t kEphemeralFirst = 49152;

template <class T>
IoResult<T> failure(int error) {
  IoResult<T> result;
  result.error = error;
  return result;
}

}  // namespace

SimBackend::SimBackend(SimClock& clock, SchedulePolicy& policy, Prng& prng, NetworkConfig config,
                       WorldView world, Trace* trace)
    : clock_(clock),
      policy_(policy),
      prng_(prng),
      config_(config),
      world_(std::move(world)),
      trace_(trace) {
  TRELLIS_ASSERT(config_.latency_min <= config_.latency_max);
}

SimBackend::~SimBackend() = default;

// ---- the event queue: the one place virtual time advances -------------------------------

bool SimBackend::wait_and_dispatch(Duration timeout) {
  TRELLIS_ASSERT(timeout >= Duration::zero());
  const Time now = clock_.now();
  const Time limit =
      timeout == Duration::max() || timeout > Time::max() - now ? Time::max() : now + timeout;
  bool dispatched = false;
  // Events due now, then (only if nothing woke up yet) the next instant within the timeout:
  // tasks woken at one instant run before time moves on.
  while (!events_.empty()) {
    const Time t = events_.next_time();
    if (t > limit) break;
    if (t > clock_.now()) {
      if (dispatched) break;
      clock_.advance_to(t);
    }
    for (EventQueue::Action& action : events_.take_next_instant(policy_)) action();
    dispatched = true;
  }
  if (!dispatched && limit != Time::max() && limit > clock_.now()) {
    // Nothing happens before the run loop's next deadline: time jumps to it.
    clock_.advance_to(limit);
  }
  return dispatched;
}

BackendStatistics SimBackend::statistics() const {
  BackendStatistics stats;
  stats.tasks_waiting_io = waiters_;
  stats.pending_sources = events_.size();
  return stats;
}

// ---- helpers -------------------------------------------------------------------------------

HostState& SimBackend::caller(const char* operation) {
  HostState* host = world_.current_host ? world_.current_host() : nullptr;
  if (host == nullptr) {
    throw UsageError(std::string(operation) +
                     ": network calls in a simulation must run in a host's task (Host::start), "
                     "not in the world's driver");
  }
  return *host;
}

SimBackend::Socket* SimBackend::find(std::int64_t id) {
  auto it = sockets_.find(id);
  return it == sockets_.end() ? nullptr : it->second.get();
}

SimBackend::Socket* SimBackend::lookup(IoHandle handle, int* error, const char* operation) {
  HostState& host = caller(operation);
  if (!host.alive || (world_.caller_is_stale && world_.caller_is_stale())) {
    *error = ENETDOWN;
    return nullptr;
  }
  Socket* socket = find(handle.value);
  if (socket == nullptr || socket->closed_by_user || socket->host != &host ||
      socket->incarnation != host.incarnation) {
    *error = EBADF;
    return nullptr;
  }
  *error = 0;
  return socket;
}

bool SimBackend::link_up(const HostState& from, const HostState& to, Time now) {
  if (&from == &to) return true;
  auto it = links_.find({from.index, to.index});
  if (it == links_.end()) return true;
  return !it->second.partitioned && it->second.clogged_until <= now;
}

Duration SimBackend::latency(const HostState* from, const HostState* to) {
  Duration low = config_.latency_min;
  Duration high = config_.latency_max;
  if (from != nullptr && to != nullptr && from != to) {
    auto it = links_.find({from->index, to->index});
    if (it != links_.end() && it->second.latency_max > Duration::zero()) {
      low = it->second.latency_min;
      high = it->second.latency_max;
    }
  }
  TRELLIS_ASSERT(low <= high);
  const auto span = static_cast<std::uint64_t>((high - low).count());
  return low + Duration(static_cast<Duration::rep>(prng_.below(span + 1)));
}

HostState* SimBackend::host_at(const SocketAddress& address, HostState* self) const {
  const std::string ip = address.host();
  if (ip == "127.0.0.1") return self;
  return world_.host_by_address ? world_.host_by_address(ip) : nullptr;
}

int SimBackend::bind_port(Socket& socket, std::uint16_t port) {
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
    if (port == 0) return EADDRINUSE;
  } else if (ports_.contains({host, socket.type, port})) {
    return EADDRINUSE;
  }
  ports_.emplace(std::make_tuple(host, socket.type, port), socket.id);
  if (socket.local.empty()) {
    socket.local = *SocketAddress::parse(socket.host->address, port);
  }
  socket.local.set_port(port);
  return 0;
}

void SimBackend::unbind(Socket& socket) {
  if (socket.local.empty() || socket.local.port() == 0) return;
  auto it = ports_.find({socket.host->index, socket.type, socket.local.port()});
  if (it != ports_.end() && it->second == socket.id) ports_.erase(it);
}

std::size_t SimBackend::window_left(const Socket& socket) {
  std::size_t used = socket.outgoing_bytes;
  if (const Socket* peer = find(socket.peer_id)) used += peer->received.size();
  return used >= config_.tcp_window_bytes ? 0 : config_.tcp_window_bytes - used;
}

bool SimBackend::readable(const Socket& s) {
  if (s.error != 0 || s.reset) return true;
  if (s.type == SOCK_DGRAM) return !s.datagrams.empty();
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

bool SimBackend::writable(const Socket& s) {
  if (s.error != 0 || s.reset) return true;
  if (s.type == SOCK_DGRAM) return true;
  switch (s.state) {
    case State::kConnected:
      return s.shut_write || s.reset || window_left(s) > 0;
    case State::kListening:
    case State::kConnecting:
      return false;
    case State::kFresh:
      return true;
  }
  return true;
}

void SimBackend::poke(Socket& socket) {
  if (socket.reader != nullptr && readable(socket)) {
    lowlevel::Task* task = std::exchange(socket.reader, nullptr);
    --waiters_;
    lowlevel::reschedule(*task);
  }
  if (socket.writer != nullptr && writable(socket)) {
    lowlevel::Task* task = std::exchange(socket.writer, nullptr);
    --waiters_;
    lowlevel::reschedule(*task);
  }
}

// ---- IoFacet -------------------------------------------------------------------------------

void SimBackend::wait(IoHandle handle, bool for_write) {
  const char* operation = for_write ? "wait_writable" : "wait_readable";
  if (PipeEnd* end = find_pipe(handle.value)) {
    pipe_wait(*end, for_write);
    return;
  }
  int error = 0;
  Socket* socket = lookup(handle, &error, operation);
  if (socket == nullptr) throw OSError(error, operation);
  lowlevel::Task*& slot = for_write ? socket->writer : socket->reader;
  if (slot != nullptr) {
    throw BusyResourceError(std::string("another task is already waiting for this socket to be ") +
                            (for_write ? "writable" : "readable"));
  }
  slot = &lowlevel::current_task();
  ++waiters_;
  const std::int64_t id = socket->id;
  if (for_write ? writable(*socket) : readable(*socket)) {
    // Ready already: wake at this instant, through the queue (after the park below).
    events_.schedule(clock_.now(), [this, id] {
      if (Socket* s = find(id)) poke(*s);
    });
  }
  lowlevel::wait_task_rescheduled(
      [&](std::exception_ptr) {
        if (Socket* s = find(id)) {
          lowlevel::Task*& waiter = for_write ? s->writer : s->reader;
          if (waiter != nullptr) {
            waiter = nullptr;
            --waiters_;
          }
        }
        return lowlevel::Abort::kSucceeded;
      },
      for_write ? "sim socket writable" : "sim socket readable");
}

void SimBackend::wait_readable(IoHandle handle) {
  wait(handle, false);
}
void SimBackend::wait_writable(IoHandle handle) {
  wait(handle, true);
}

void SimBackend::notify_closing(IoHandle handle) {
  if (PipeEnd* end = find_pipe(handle.value)) {
    Pipe& pipe = *end->pipe;
    wake_pipe_waiter(end->write_end ? pipe.writer : pipe.reader,
                     std::make_exception_ptr(ClosedResourceError(
                         "another task closed this pipe while it was waited on")));
    return;
  }
  Socket* socket = find(handle.value);
  if (socket == nullptr || socket->closed_by_user) return;
  for (lowlevel::Task** slot : {&socket->reader, &socket->writer}) {
    if (*slot != nullptr) {
      lowlevel::Task* task = std::exchange(*slot, nullptr);
      --waiters_;
      lowlevel::reschedule(*task, std::make_exception_ptr(ClosedResourceError(
                                      "another task closed this socket while it was waited on")));
    }
  }
}

int SimBackend::close(IoHandle handle) {
  if (PipeEnd* end = find_pipe(handle.value)) {
    notify_closing(handle);
    const std::shared_ptr<Pipe> pipe = end->pipe;
    if (end->write_end) {
      pipe->write_open = false;
      wake_pipe_waiter(pipe->reader);  // reads end of file now
    } else {
      pipe->read_open = false;
      pipe->bytes.clear();
      wake_pipe_waiter(pipe->writer);  // writes fail with EPIPE now
    }
    pipe_ends_.erase(handle.value);
    return 0;
  }
  int error = 0;
  Socket* socket = lookup(handle, &error, "close");
  if (socket == nullptr) return error;
  notify_closing(handle);
  unbind(*socket);
  if (socket->state == State::kListening) {
    // Connections never accepted are reset.
    for (std::int64_t pending : socket->accept_queue) {
      if (Socket* s = find(pending)) {
        reset_peer_of(*s);
        erase(s->id);
      }
    }
    socket->accept_queue.clear();
  }
  socket->closed_by_user = true;
  if (socket->state == State::kConnected && !socket->shut_write && !socket->reset) {
    socket->shut_write = true;
    enqueue(*socket, Segment{{}, true, {}});
  }
  erase_if_drained(*socket);
  return 0;
}

IoResult<std::size_t> SimBackend::read(IoHandle handle, void* buffer, std::size_t size) {
  if (PipeEnd* end = find_pipe(handle.value)) {
    if (end->write_end) return {0, EBADF};
    Pipe& pipe = *end->pipe;
    if (pipe.bytes.empty()) return {0, pipe.write_open ? EAGAIN : 0};
    const std::size_t n = std::min(size, pipe.bytes.size());
    std::copy_n(pipe.bytes.begin(), n, static_cast<std::byte*>(buffer));
    pipe.bytes.erase(pipe.bytes.begin(), pipe.bytes.begin() + static_cast<std::ptrdiff_t>(n));
    wake_pipe_waiter(pipe.writer);
    return {n, 0};
  }
  return recv(handle, buffer, size);
}

IoResult<std::size_t> SimBackend::write(IoHandle handle, const void* data, std::size_t size) {
  if (PipeEnd* end = find_pipe(handle.value)) {
    if (!end->write_end) return {0, EBADF};
    Pipe& pipe = *end->pipe;
    if (!pipe.read_open) return {0, EPIPE};
    const std::size_t space = kPipeCapacity - pipe.bytes.size();
    if (space == 0) return {0, EAGAIN};
    const std::size_t n = std::min(size, space);
    const auto* bytes = static_cast<const std::byte*>(data);
    pipe.bytes.insert(pipe.bytes.end(), bytes, bytes + n);
    wake_pipe_waiter(pipe.reader);
    return {n, 0};
  }
  return send(handle, data, size);
}

// ---- pipes ---------------------------------------------------------------------------------

std::pair<IoHandle, IoHandle> SimBackend::make_pipe() {
  auto pipe = std::make_shared<Pipe>();
  const std::int64_t read_id = next_handle_++;
  const std::int64_t write_id = next_handle_++;
  pipe_ends_.emplace(read_id, PipeEnd{pipe, false});
  pipe_ends_.emplace(write_id, PipeEnd{pipe, true});
  return {IoHandle{read_id}, IoHandle{write_id}};
}

SimBackend::PipeEnd* SimBackend::find_pipe(std::int64_t id) {
  if (pipe_ends_.empty()) return nullptr;
  auto it = pipe_ends_.find(id);
  return it == pipe_ends_.end() ? nullptr : &it->second;
}

void SimBackend::wake_pipe_waiter(lowlevel::Task*& slot, std::exception_ptr error) {
  if (slot == nullptr) return;
  lowlevel::Task* task = std::exchange(slot, nullptr);
  --waiters_;
  lowlevel::reschedule(*task, std::move(error));
}

void SimBackend::pipe_wait(PipeEnd& end, bool for_write) {
  const std::shared_ptr<Pipe> pipe = end.pipe;
  // Level-triggered: return at once if the call would not block now.
  const bool ready = for_write ? (!pipe->read_open || pipe->bytes.size() < kPipeCapacity)
                               : (!pipe->write_open || !pipe->bytes.empty());
  if (ready && end.write_end == for_write) {
    checkpoint_if_cancelled();
    return;
  }
  lowlevel::Task*& slot = for_write ? pipe->writer : pipe->reader;
  if (slot != nullptr) {
    throw BusyResourceError(std::string("another task is already waiting for this pipe to be ") +
                            (for_write ? "writable" : "readable"));
  }
  slot = &lowlevel::current_task();
  ++waiters_;
  lowlevel::wait_task_rescheduled(
      [&](std::exception_ptr) {
        lowlevel::Task*& waiter = for_write ? pipe->writer : pipe->reader;
        if (waiter != nullptr) {
          waiter = nullptr;
          --waiters_;
        }
        return lowlevel::Abort::kSucceeded;
      },
      for_write ? "sim pipe writable" : "sim pipe readable");
}

// ---- NetworkFacet --------------------------------------------------------------------------

IoResult<IoHandle> SimBackend::socket(int domain, int type, int protocol) {
  HostState& host = caller("socket");
  if (!host.alive || (world_.caller_is_stale && world_.caller_is_stale())) {
    return failure<IoHandle>(ENETDOWN);
  }
  if (domain != AF_INET) return failure<IoHandle>(EAFNOSUPPORT);
  const int base_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (base_type != SOCK_STREAM && base_type != SOCK_DGRAM)
    return failure<IoHandle>(EPROTONOSUPPORT);
  if (protocol != 0 && protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) {
    return failure<IoHandle>(EPROTONOSUPPORT);
  }
  auto socket = std::make_unique<Socket>();
  socket->id = next_handle_++;
  socket->host = &host;
  socket->incarnation = host.incarnation;
  socket->type = base_type;
  const std::int64_t id = socket->id;
  sockets_.emplace(id, std::move(socket));
  return {IoHandle{id}, 0};
}

int SimBackend::bind(IoHandle handle, const SocketAddress& address) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "bind");
  if (socket == nullptr) return error;
  if (address.family() != AF_INET) return EAFNOSUPPORT;
  if (!socket->local.empty() && socket->local.port() != 0) return EINVAL;  // bound already
  const std::string ip = address.host();
  if (ip != "0.0.0.0" && ip != "127.0.0.1" && ip != socket->host->address) return EADDRNOTAVAIL;
  return bind_port(*socket, address.port());
}

int SimBackend::listen(IoHandle handle, int backlog) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "listen");
  if (socket == nullptr) return error;
  if (socket->type != SOCK_STREAM) return EOPNOTSUPP;
  if (socket->state != State::kFresh && socket->state != State::kListening) return EINVAL;
  if (socket->local.empty() || socket->local.port() == 0) {
    if (const int e = bind_port(*socket, 0); e != 0) return e;
  }
  socket->state = State::kListening;
  socket->backlog = std::clamp(backlog, 1, config_.listen_backlog_max);
  return 0;
}

IoResult<AcceptedSocket> SimBackend::accept(IoHandle handle) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "accept");
  if (socket == nullptr) return failure<AcceptedSocket>(error);
  if (socket->state != State::kListening) return failure<AcceptedSocket>(EINVAL);
  while (!socket->accept_queue.empty()) {
    const std::int64_t id = socket->accept_queue.front();
    socket->accept_queue.pop_front();
    if (Socket* accepted = find(id)) return {AcceptedSocket{IoHandle{id}, accepted->peer}, 0};
  }
  return failure<AcceptedSocket>(EAGAIN);
}

int SimBackend::connect(IoHandle handle, const SocketAddress& address) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "connect");
  if (socket == nullptr) return error;
  if (address.family() != AF_INET) return EAFNOSUPPORT;
  if (socket->type != SOCK_STREAM) {
    // A datagram socket's connect only sets the default peer.
    if (socket->local.empty()) bind_port(*socket, 0);
    socket->peer = address;
    return 0;
  }
  switch (socket->state) {
    case State::kConnecting:
      return EALREADY;
    case State::kConnected:
      return EISCONN;
    case State::kListening:
      return EINVAL;
    case State::kFresh:
      break;
  }
  if (socket->local.empty() || socket->local.port() == 0) {
    if (const int e = bind_port(*socket, 0); e != 0) return e;
  }
  socket->state = State::kConnecting;
  socket->peer = address;
  socket->connect_deadline = clock_.now() + config_.connect_timeout;
  const std::int64_t id = socket->id;
  const std::uint64_t incarnation = socket->incarnation;
  events_.schedule(clock_.now() + latency(socket->host, host_at(address, socket->host)),
                   [this, id, address, incarnation] { syn_arrives(id, address, incarnation); });
  return EINPROGRESS;
}

void SimBackend::syn_arrives(std::int64_t client_id, SocketAddress target,
                             std::uint64_t incarnation) {
  Socket* client = find(client_id);
  if (client == nullptr || client->incarnation != incarnation ||
      client->state != State::kConnecting || client->closed_by_user) {
    return;  // the attempt was abandoned (closed, crashed)
  }
  const Time now = clock_.now();
  const std::string ip = target.host();
  HostState* server_host = ip == "127.0.0.1"
                               ? client->host
                               : (world_.host_by_address ? world_.host_by_address(ip) : nullptr);
  auto retry_or_time_out = [&] {
    if (now + config_.retransmit_timeout > client->connect_deadline) {
      // No answer before the deadline: the attempt times out then.
      events_.schedule(client->connect_deadline, [this, client_id, incarnation] {
        Socket* c = find(client_id);
        if (c == nullptr || c->incarnation != incarnation || c->state != State::kConnecting) {
          return;
        }
        c->error = ETIMEDOUT;
        c->state = State::kFresh;
        unbind(*c);
        poke(*c);
      });
      return;
    }
    events_.schedule(now + config_.retransmit_timeout, [this, client_id, target, incarnation] {
      syn_arrives(client_id, target, incarnation);
    });
  };
  if (server_host == nullptr || !server_host->alive || !link_up(*client->host, *server_host, now)) {
    retry_or_time_out();
    return;
  }
  auto port = ports_.find({server_host->index, SOCK_STREAM, target.port()});
  Socket* listener = port == ports_.end() ? nullptr : find(port->second);
  if (listener == nullptr || listener->state != State::kListening || listener->closed_by_user) {
    // Refused: the reset travels back.
    const std::uint64_t client_incarnation = client->incarnation;
    events_.schedule(now + latency(server_host, client->host), [this, client_id,
                                                                client_incarnation] {
      Socket* c = find(client_id);
      if (c == nullptr || c->incarnation != client_incarnation || c->state != State::kConnecting) {
        return;
      }
      c->error = ECONNREFUSED;
      c->state = State::kFresh;
      unbind(*c);
      poke(*c);
    });
    return;
  }
  if (static_cast<int>(listener->accept_queue.size()) >= listener->backlog) {
    retry_or_time_out();  // SYN dropped on a full backlog; the client retransmits
    return;
  }
  // The server side of the connection exists from now on, waiting in the accept queue.
  auto server = std::make_unique<Socket>();
  server->id = next_handle_++;
  server->host = server_host;
  server->incarnation = server_host->incarnation;
  server->type = SOCK_STREAM;
  server->state = State::kConnected;
  server->local = *SocketAddress::parse(server_host->address, target.port());
  server->peer = client->local;
  server->peer_id = client_id;
  const std::int64_t server_id = server->id;
  sockets_.emplace(server_id, std::move(server));
  listener->accept_queue.push_back(server_id);
  poke(*listener);
  // The SYN-ACK travels back; the client is connected when it lands.
  events_.schedule(
      now + latency(server_host, client->host), [this, client_id, server_id, incarnation] {
        Socket* c = find(client_id);
        if (c == nullptr || c->incarnation != incarnation || c->state != State::kConnecting) {
          // The client is gone: its half-open peer gets a reset.
          if (Socket* s = find(server_id)) {
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

IoResult<int> SimBackend::socket_error(IoHandle handle) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "getsockopt(SO_ERROR)");
  if (socket == nullptr) return failure<int>(error);
  return {std::exchange(socket->error, 0), 0};
}

IoResult<std::size_t> SimBackend::send(IoHandle handle, const void* data, std::size_t size) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "send");
  if (socket == nullptr) return failure<std::size_t>(error);
  if (socket->type != SOCK_STREAM) {
    if (socket->peer.empty()) return failure<std::size_t>(EDESTADDRREQ);
    return send_to(handle, data, size, socket->peer);
  }
  // A pending error (a reset) is reported once; after a reset, sends fail with EPIPE.
  if (socket->error != 0) return failure<std::size_t>(std::exchange(socket->error, 0));
  if (socket->state != State::kConnected) return failure<std::size_t>(ENOTCONN);
  if (socket->shut_write || socket->reset) return failure<std::size_t>(EPIPE);
  if (size == 0) return {0, 0};
  const std::size_t room = window_left(*socket);
  if (room == 0) return failure<std::size_t>(EAGAIN);
  const std::size_t n = std::min(size, room);
  Segment segment;
  segment.bytes.resize(n);
  std::memcpy(segment.bytes.data(), data, n);
  enqueue(*socket, std::move(segment));
  return {n, 0};
}

IoResult<std::size_t> SimBackend::recv(IoHandle handle, void* buffer, std::size_t size) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "recv");
  if (socket == nullptr) return failure<std::size_t>(error);
  if (socket->type != SOCK_STREAM) {
    IoResult<ReceivedDatagram> got = receive_from(handle, buffer, size);
    return {got.value.size, got.error};
  }
  if (socket->state != State::kConnected) {
    if (socket->error != 0) return failure<std::size_t>(std::exchange(socket->error, 0));
    return failure<std::size_t>(ENOTCONN);
  }
  if (!socket->received.empty() && !socket->shut_read) {
    const std::size_t n = std::min(size, socket->received.size());
    std::copy_n(socket->received.begin(), n, static_cast<std::byte*>(buffer));
    socket->received.erase(socket->received.begin(),
                           socket->received.begin() + static_cast<std::ptrdiff_t>(n));
    // Reading opens the sender's window.
    if (Socket* peer = find(socket->peer_id)) poke(*peer);
    return {n, 0};
  }
  // A pending error (a reset) is reported once; after it, reads see end of stream.
  if (socket->error != 0) return failure<std::size_t>(std::exchange(socket->error, 0));
  if (socket->fin_received || socket->shut_read || socket->reset) return {0, 0};
  return failure<std::size_t>(EAGAIN);
}

IoResult<std::size_t> SimBackend::send_to(IoHandle handle, const void* data, std::size_t size,
                                          const SocketAddress& to) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "sendto");
  if (socket == nullptr) return failure<std::size_t>(error);
  if (socket->type != SOCK_DGRAM) return failure<std::size_t>(EOPNOTSUPP);
  if (to.family() != AF_INET) return failure<std::size_t>(EAFNOSUPPORT);
  if (socket->local.empty() || socket->local.port() == 0) {
    if (const int e = bind_port(*socket, 0); e != 0) return failure<std::size_t>(e);
  }
  if (size > 65507) return failure<std::size_t>(EMSGSIZE);
  Datagram datagram{socket->local, std::vector<std::byte>(size)};
  std::memcpy(datagram.bytes.data(), data, size);
  HostState* from_host = socket->host;
  const std::string ip = to.host();
  const std::uint16_t port = to.port();
  const int copies = prng_.chance(config_.datagram_duplicate_ppm, 1'000'000) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    if (prng_.chance(config_.datagram_loss_ppm, 1'000'000)) {
      if (trace_ != nullptr) trace_->record("datagram lost", port);
      continue;
    }
    Duration delay = latency(from_host, host_at(to, from_host));
    if (prng_.chance(config_.datagram_reorder_ppm, 1'000'000)) {
      delay += Duration(static_cast<Duration::rep>(
          prng_.below(static_cast<std::uint64_t>(10 * config_.latency_max.count()) + 1)));
    }
    events_.schedule(clock_.now() + delay, [this, from_host, ip, port, datagram] {
      HostState* target = ip == "127.0.0.1"
                              ? from_host
                              : (world_.host_by_address ? world_.host_by_address(ip) : nullptr);
      if (target == nullptr || !target->alive || !from_host->alive ||
          !link_up(*from_host, *target, clock_.now())) {
        if (trace_ != nullptr) trace_->record("datagram dropped", port);
        return;
      }
      auto it = ports_.find({target->index, SOCK_DGRAM, port});
      Socket* s = it == ports_.end() ? nullptr : find(it->second);
      if (s == nullptr || s->closed_by_user || s->datagrams.size() >= config_.datagram_queue_max) {
        return;
      }
      s->datagrams.push_back(datagram);
      ++messages_delivered_;
      poke(*s);
    });
  }
  return {size, 0};
}

IoResult<ReceivedDatagram> SimBackend::receive_from(IoHandle handle, void* buffer,
                                                    std::size_t size) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "recvfrom");
  if (socket == nullptr) return failure<ReceivedDatagram>(error);
  if (socket->type != SOCK_DGRAM) return failure<ReceivedDatagram>(EOPNOTSUPP);
  if (socket->datagrams.empty()) return failure<ReceivedDatagram>(EAGAIN);
  Datagram datagram = std::move(socket->datagrams.front());
  socket->datagrams.pop_front();
  // As recvfrom(2): a datagram longer than the buffer is truncated, the rest discarded.
  const std::size_t n = std::min(size, datagram.bytes.size());
  std::memcpy(buffer, datagram.bytes.data(), n);
  return {ReceivedDatagram{n, datagram.from}, 0};
}

int SimBackend::shutdown(IoHandle handle, int how) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "shutdown");
  if (socket == nullptr) return error;
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return EINVAL;
  if (socket->state != State::kConnected) return ENOTCONN;
  if (how == SHUT_RD || how == SHUT_RDWR) socket->shut_read = true;
  if ((how == SHUT_WR || how == SHUT_RDWR) && !socket->shut_write) {
    socket->shut_write = true;
    if (!socket->reset) enqueue(*socket, Segment{{}, true, {}});
  }
  poke(*socket);
  return 0;
}

int SimBackend::set_option(IoHandle handle, int level, int name, int value) {
  (void)level;
  (void)name;
  (void)value;
  int error = 0;
  // Options (SO_REUSEADDR, TCP_NODELAY, ...) change nothing the simulation models.
  return lookup(handle, &error, "setsockopt") == nullptr ? error : 0;
}

IoResult<int> SimBackend::get_option(IoHandle handle, int level, int name) {
  if (level == SOL_SOCKET && name == SO_ERROR) return socket_error(handle);
  int error = 0;
  Socket* socket = lookup(handle, &error, "getsockopt");
  if (socket == nullptr) return failure<int>(error);
  if (level == SOL_SOCKET && name == SO_TYPE) return {socket->type, 0};
  return {0, 0};
}

IoResult<SocketAddress> SimBackend::local_address(IoHandle handle) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "getsockname");
  if (socket == nullptr) return failure<SocketAddress>(error);
  if (socket->local.empty()) return {*SocketAddress::parse("0.0.0.0", 0), 0};
  return {socket->local, 0};
}

IoResult<SocketAddress> SimBackend::peer_address(IoHandle handle) {
  int error = 0;
  Socket* socket = lookup(handle, &error, "getpeername");
  if (socket == nullptr) return failure<SocketAddress>(error);
  if (socket->state != State::kConnected || socket->peer.empty()) {
    return failure<SocketAddress>(ENOTCONN);
  }
  return {socket->peer, 0};
}

IoResult<std::vector<SocketAddress>> SimBackend::resolve(const std::string& host,
                                                         std::uint16_t port, int family, int type) {
  (void)type;
  HostState& caller_host = caller("resolve");
  sleep(config_.resolve_latency);  // blocks the task, cancellable, as a real lookup
  if (!caller_host.alive) return failure<std::vector<SocketAddress>>(EAI_AGAIN);
  if (family != AF_UNSPEC && family != AF_INET)
    return failure<std::vector<SocketAddress>>(EAI_FAMILY);
  std::vector<SocketAddress> out;
  if (std::optional<SocketAddress> numeric = SocketAddress::parse(host, port)) {
    if (numeric->family() != AF_INET) return failure<std::vector<SocketAddress>>(EAI_FAMILY);
    out.push_back(*numeric);
    return {out, 0};
  }
  std::vector<std::string> addresses;
  if (host == "localhost") addresses.push_back("127.0.0.1");
  if (addresses.empty() && world_.resolve_name) addresses = world_.resolve_name(host);
  if (addresses.empty()) return failure<std::vector<SocketAddress>>(EAI_NONAME);
  for (const std::string& address : addresses) out.push_back(*SocketAddress::parse(address, port));
  return {out, 0};
}

// ---- TCP delivery ----------------------------------------------------------------------------

void SimBackend::enqueue(Socket& socket, Segment segment) {
  const Socket* peer = find(socket.peer_id);
  segment.due = std::max(
      clock_.now() + latency(socket.host, peer != nullptr ? peer->host : nullptr), socket.last_due);
  segment.id = next_message_id_++;
  if (trace_ != nullptr) trace_->record(segment.fin ? "tcp fin send" : "tcp send", segment.id);
  socket.last_due = segment.due;
  socket.outgoing_bytes += segment.bytes.size();
  socket.outgoing.push_back(std::move(segment));
  schedule_delivery(socket);
}

void SimBackend::schedule_delivery(Socket& socket) {
  if (socket.delivery_scheduled || socket.outgoing.empty()) return;
  socket.delivery_scheduled = true;
  const std::int64_t id = socket.id;
  events_.schedule(std::max(clock_.now(), socket.outgoing.front().due),
                   [this, id] { deliver(id); });
}

void SimBackend::deliver(std::int64_t id) {
  Socket* socket = find(id);
  if (socket == nullptr) return;
  socket->delivery_scheduled = false;
  if (socket->outgoing.empty()) return;
  const Time now = clock_.now();
  Socket* peer = find(socket->peer_id);
  HostState* peer_host = peer != nullptr ? peer->host : nullptr;
  if (peer != nullptr && peer_host->alive && !link_up(*socket->host, *peer_host, now)) {
    // Partitioned or clogged: TCP retransmits later; nothing is lost.
    auto it = links_.find({socket->host->index, peer_host->index});
    Time retry = now + config_.retransmit_timeout;
    if (it != links_.end() && !it->second.partitioned)
      retry = std::max(now, it->second.clogged_until);
    socket->delivery_scheduled = true;
    events_.schedule(retry, [this, id] { deliver(id); });
    return;
  }
  if (peer == nullptr || peer->incarnation != peer_host->incarnation || peer->closed_by_user) {
    // Nobody there any more (closed, or its host crashed and its sockets are gone): reset.
    if (peer != nullptr && peer->closed_by_user && socket->outgoing.front().fin) {
      // A FIN to a closed socket: the orderly end of the connection.
      socket->outgoing.clear();
      socket->outgoing_bytes = 0;
      erase_if_drained(*socket);
      return;
    }
    socket->outgoing.clear();
    socket->outgoing_bytes = 0;
    socket->error = ECONNRESET;
    socket->reset = true;
    poke(*socket);
    erase_if_drained(*socket);
    return;
  }
  Segment segment = std::move(socket->outgoing.front());
  socket->outgoing.pop_front();
  socket->outgoing_bytes -= segment.bytes.size();
  if (segment.fin) {
    peer->fin_received = true;
  } else {
    peer->received.insert(peer->received.end(), segment.bytes.begin(), segment.bytes.end());
  }
  ++messages_delivered_;
  if (trace_ != nullptr)
    trace_->record(segment.fin ? "tcp fin deliver" : "tcp deliver", segment.id);
  poke(*peer);
  poke(*socket);
  schedule_delivery(*socket);
  erase_if_drained(*socket);
}

void SimBackend::reset_peer_of(Socket& socket) {
  Socket* peer = find(socket.peer_id);
  if (peer == nullptr) return;
  const std::int64_t peer_id = peer->id;
  events_.schedule(clock_.now() + latency(socket.host, peer->host), [this, peer_id] {
    if (Socket* p = find(peer_id)) {
      p->error = ECONNRESET;
      p->reset = true;
      poke(*p);
    }
  });
}

void SimBackend::erase_if_drained(Socket& socket) {
  if (socket.closed_by_user && socket.outgoing.empty() && !socket.delivery_scheduled) {
    erase(socket.id);
  }
}

void SimBackend::erase(std::int64_t id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket& socket = *it->second;
  TRELLIS_ASSERT(socket.reader == nullptr && socket.writer == nullptr);
  unbind(socket);
  sockets_.erase(it);
}

// ---- faults ----------------------------------------------------------------------------------

void SimBackend::host_crashed(HostState& host) {
  signals_.host_crashed(host);
  processes_.host_crashed(host);
  std::vector<std::int64_t> doomed;
  for (auto& [id, socket] : sockets_) {
    if (socket->host == &host) doomed.push_back(id);
  }
  for (std::int64_t id : doomed) {
    Socket& socket = *sockets_.at(id);
    // The host's tasks were cancelled first; a waiter left here is parked in a shielded
    // scope: it hears the crash as a reset.
    for (lowlevel::Task** slot : {&socket.reader, &socket.writer}) {
      if (*slot != nullptr) {
        lowlevel::Task* task = std::exchange(*slot, nullptr);
        --waiters_;
        lowlevel::reschedule(*task, std::make_exception_ptr(OSError(ENETDOWN, "host crashed")));
      }
    }
    socket.delivery_scheduled = false;
    socket.outgoing.clear();
    socket.outgoing_bytes = 0;
    erase(id);
  }
}

void SimBackend::set_partitioned(std::uint32_t from, std::uint32_t to, bool partitioned) {
  link(from, to).partitioned = partitioned;
}

void SimBackend::set_link_latency(std::uint32_t from, std::uint32_t to, Duration low,
                                  Duration high) {
  TRELLIS_ASSERT(low <= high);
  Link& l = link(from, to);
  l.latency_min = low;
  l.latency_max = high;
}

void SimBackend::clog(std::uint32_t from, std::uint32_t to, Time until) {
  Link& l = link(from, to);
  l.clogged_until = std::max(l.clogged_until, until);
}

}  // namespace trellis::sim::internal
