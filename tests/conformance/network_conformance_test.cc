// One network test body per behaviour, each run against the real facet (EpollBackend's
// PosixNetwork on loopback, 127.0.0.1, ephemeral ports) and the simulated one (a sim::World
// host talking to itself at its own address), proving they agree.
//
// TCP: connect and accept (addresses both ends see, loopback and wildcard listeners), a
// refused connection, round trips of 1 B .. 3 MiB through serve_tcp, half-close, end of
// stream, shutdown(SHUT_RD), resets (close with unread data, sending after the peer
// closed), back-pressure, several queued connections, closing a listener (a waiting accept;
// unaccepted connections), a closed stream, concurrent use (BusyResourceError), socket
// options, ports in use; TLS over TCP passes the two-way stream checks. UDP: datagrams with the
// sender's address, datagram boundaries and the size limit, truncation, sending to a port nobody is
// bound to (unconnected and connected sockets), connected sockets' peer filter, ports in use.
//
// The real kernel is the truth. Where the simulator does something else, the check stays in
// the shared body and is skipped in the sim arm through one flag of Arm (each says what Linux
// does, what the simulator does instead, and which function of sim/trellis/sim/internal/ is
// responsible): fixing the simulator means flipping that flag in sim_arm(), watching the
// check pass, and deleting the flag. None is left today.
//
// Timing: no check depends on how long the real kernel takes. Bodies wait for conditions
// (readiness, wait_all_tasks_blocked, a bounded poll for an asynchronous reset); the one
// fixed sleep (the UDP peer filter) only lets a simulated datagram land and decides nothing
// on a correct network; fail_after only bounds a body that hangs.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/fakes/check_streams.h"
#include "trellis/fakes/tls.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSimHostAddress = "10.0.0.1";
// Bounds a body that hangs (real time on the posix arm, virtual time in the simulator).
constexpr Duration kBodyTimeLimit = 60s;

// ---- the arms --------------------------------------------------------------------------------

// What a body needs to know about the arm it runs in.
//
// A known difference between the simulator and Linux would be one more bool here, true on
// the posix arm, false in sim_arm() with a comment (what Linux does, what the simulator
// does instead, where), and each check that depends on it skipped when false. There is none
// today: the ten the simulated network had (addresses of loopback and wildcard binds, reset
// on close with unread data, EPIPE for a reset after FIN, UDP port-unreachable, peer filter
// and getpeername of connected datagram sockets, empty datagrams, options read back and
// malformed ones refused) were fixed in sim/trellis/sim/internal/ and their checks run in
// both arms.
struct Arm {
  // The address the body listens on, binds to and connects to: 127.0.0.1 on the posix arm,
  // the host's own address in the simulator (one host talking to itself).
  std::string ip;
};

Arm posix_arm() {
  return Arm{.ip = "127.0.0.1"};
}

Arm sim_arm() {
  return Arm{.ip = kSimHostAddress};
}

using Body = void (*)(const Arm&);

// The messages of the exceptions at the leaves of an ExceptionGroup tree.
std::string leaf_messages(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const ExceptionGroup& group) {
    std::string out;
    for (const std::exception_ptr& e : group.exceptions()) out += leaf_messages(e);
    return out;
  } catch (const std::exception& e) {
    return std::string("\n  ") + e.what();
  } catch (...) {
    return "\n  (not a std::exception)";
  }
}

void run_posix(Body body) {
  const Arm arm = posix_arm();
  run([&] { fail_after(kBodyTimeLimit, [&] { body(arm); }); });
}

void run_sim(Body body) {
  const Arm arm = sim_arm();
  sim::World world(sim::Config{.seed = 7});
  sim::Host& host = world.add_host("h", kSimHostAddress);
  bool done = false;
  host.start([&] {
    // Set however the body ends (a fatal gtest assertion returns early).
    struct SetOnExit {
      bool& flag;
      ~SetOnExit() { flag = true; }
    } set_done{done};
    fail_after(kBodyTimeLimit, [&] { body(arm); });
  });
  try {
    world.run([&] {
      while (!done) sleep(1ms);
    });
  } catch (const ExceptionGroup&) {
    // The body's exception reaches us wrapped in the world's and the host's nurseries.
    ADD_FAILURE() << "the body threw: " << leaf_messages(std::current_exception());
  }
  EXPECT_TRUE(done);
}

enum class ArmKind { kPosix, kSim };

void PrintTo(ArmKind kind, std::ostream* out) {
  *out << (kind == ArmKind::kPosix ? "Posix" : "Sim");
}

class NetworkConformance : public ::testing::TestWithParam<ArmKind> {
 protected:
  void in_arm(Body body) const {
    if (GetParam() == ArmKind::kPosix) {
      run_posix(body);
    } else {
      run_sim(body);
    }
  }
};

// ---- helpers ---------------------------------------------------------------------------------

std::span<const std::byte> bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string text(std::span<const std::byte> data) {
  return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

std::string str(const SocketAddress& address) {
  return address.to_string();
}

SocketAddress address(const std::string& ip, std::uint16_t port) {
  return *SocketAddress::parse(ip, port);
}

// Byte `offset` of stream `seed`: not periodic in 256, so a lost, repeated or reordered
// chunk shows.
std::byte byte_at(std::uint64_t offset, std::uint32_t seed) {
  std::uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 29;
  return static_cast<std::byte>(x >> 17);
}

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed, std::uint64_t first = 0) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = byte_at(first + i, seed);
  return out;
}

// The errno of the OSError that body throws (0 if none, -1 for another exception).
// Cancelled passes through (a body that hangs must still end at kBodyTimeLimit).
int errno_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const OSError& e) {
    return e.errno_value();
  } catch (const Cancelled&) {
    throw;
  } catch (...) {
    return -1;
  }
  return 0;
}

// Receives until `size` bytes arrived or the end of the stream.
std::vector<std::byte> receive_exactly(ReceiveStream& stream, std::size_t size) {
  std::vector<std::byte> out;
  out.reserve(size);
  std::vector<std::byte> buffer(SocketStream::kReceiveSizeDefault);
  while (out.size() < size) {
    const std::size_t n =
        stream.receive_some(std::span(buffer).first(std::min(buffer.size(), size - out.size())));
    if (n == 0) break;
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return out;
}

std::string receive_text(ReceiveStream& stream, std::size_t size) {
  return text(receive_exactly(stream, size));
}

// Receives until the end of the stream (at most size_max bytes).
std::string receive_until_eof(ReceiveStream& stream, std::size_t size_max = 1 << 20) {
  std::string out;
  std::vector<std::byte> buffer(4096);
  while (out.size() < size_max) {
    const std::size_t n = stream.receive_some(buffer);
    if (n == 0) break;
    out += text(std::span(buffer).first(n));
  }
  return out;
}

struct Connection {
  SocketStream client;
  std::unique_ptr<SocketStream> server;
};

// A connected pair through a listener on ip (closed again once accepted).
Connection connect_pair(const std::string& ip) {
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, ip);
  SocketStream client = open_tcp_stream(ip, listeners.at(0)->local_address().port());
  std::unique_ptr<SocketStream> server = listeners[0]->accept();
  return Connection{std::move(client), std::move(server)};
}

// The NetworkFacet calls under a stream, for errno-level checks (no translation to stream
// errors, no waiting).
IoResult<std::size_t> raw_send(SocketStream& stream, std::span<const std::byte> data) {
  Socket& socket = stream.socket();
  return socket.network().send(socket.handle(), data.data(), data.size());
}

IoResult<std::size_t> raw_recv(SocketStream& stream) {
  std::byte buffer[64];
  Socket& socket = stream.socket();
  return socket.network().recv(socket.handle(), buffer, sizeof buffer);
}

// Parks until a receive would not block (data, end of stream or a pending error).
void wait_readable(SocketStream& stream) {
  stream.socket().io().wait_readable(stream.socket().handle());
}

// Nonblocking sends of stream `seed` until the socket says EAGAIN (the peer does not read);
// returns the bytes it took. Stops at size_max (a connection that buffers without limit).
std::uint64_t fill_until_eagain(SocketStream& stream, std::uint32_t seed, std::uint64_t size_max) {
  std::uint64_t sent = 0;
  while (sent < size_max) {
    const std::vector<std::byte> chunk = pattern(64 * 1024, seed, sent);
    const IoResult<std::size_t> result = raw_send(stream, chunk);
    if (result.error == EAGAIN) break;
    EXPECT_EQ(result.error, 0) << errno_name(result.error);
    if (result.error != 0) break;
    sent += result.value;
  }
  return sent;
}

void echo(SocketStream& stream) {
  std::vector<std::byte> buffer(SocketStream::kReceiveSizeDefault);
  while (std::size_t n = stream.receive_some(buffer)) stream.send_all(std::span(buffer).first(n));
}

// Cancels a nursery however its body ends, so an early return (a fatal assertion) does not
// leave it waiting for a server that never returns.
struct CancelOnExit {
  Nursery& nursery;
  ~CancelOnExit() { nursery.cancel_scope().cancel(); }
};

// ---- TCP -------------------------------------------------------------------------------------

void tcp_connect_and_accept_body(const Arm& arm) {
  // On the arm's address: both ends agree on both addresses.
  {
    std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
    ASSERT_EQ(listeners.size(), 1u);
    const SocketAddress listening = listeners[0]->local_address();
    EXPECT_EQ(listening.host(), arm.ip);
    EXPECT_NE(listening.port(), 0);
    SocketStream client = open_tcp_stream(arm.ip, listening.port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    const SocketAddress client_local = client.socket().local_address();
    EXPECT_EQ(client_local.host(), arm.ip);
    EXPECT_NE(client_local.port(), 0);
    EXPECT_NE(client_local.port(), listening.port());
    EXPECT_EQ(str(client.socket().peer_address()), str(listening));
    EXPECT_EQ(str(server->socket().local_address()), str(listening));
    EXPECT_EQ(str(server->socket().peer_address()), str(client_local));
    client.send_all(bytes("ping"));
    EXPECT_EQ(receive_text(*server, 4), "ping");
    server->send_all(bytes("pong"));
    EXPECT_EQ(receive_text(client, 4), "pong");
  }
  // On 127.0.0.1 (the arm's address on the posix arm).
  {
    std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, "127.0.0.1");
    ASSERT_EQ(listeners.size(), 1u);
    const SocketAddress listening = listeners[0]->local_address();
    SocketStream client = open_tcp_stream("127.0.0.1", listening.port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    const SocketAddress client_local = client.socket().local_address();
    EXPECT_EQ(client.socket().peer_address().port(), listening.port());
    EXPECT_EQ(server->socket().local_address().port(), listening.port());
    EXPECT_EQ(str(server->socket().peer_address()), str(client_local));
    EXPECT_EQ(str(listening), str(address("127.0.0.1", listening.port())));
    EXPECT_EQ(client_local.host(), "127.0.0.1");
    EXPECT_EQ(str(client.socket().peer_address()), str(listening));
    EXPECT_EQ(str(server->socket().local_address()), str(listening));
    client.send_all(bytes("ping"));
    EXPECT_EQ(receive_text(*server, 4), "ping");
  }
  // On the wildcard: the listener reports 0.0.0.0; an accepted connection reports the
  // address the client connected to.
  {
    std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, "0.0.0.0");
    ASSERT_EQ(listeners.size(), 1u);
    const SocketAddress listening = listeners[0]->local_address();
    EXPECT_NE(listening.port(), 0);
    EXPECT_EQ(str(listening), str(address("0.0.0.0", listening.port())));
    SocketStream client = open_tcp_stream(arm.ip, listening.port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    EXPECT_EQ(str(server->socket().local_address()), str(address(arm.ip, listening.port())));
    EXPECT_EQ(str(server->socket().peer_address()), str(client.socket().local_address()));
  }
}

void tcp_connect_refused_body(const Arm& arm) {
  // A bound socket that does not listen holds a port nobody listens on.
  Socket holder = Socket::open(AF_INET, SOCK_STREAM);
  holder.bind(address(arm.ip, 0));
  const std::uint16_t port = holder.local_address().port();
  ASSERT_NE(port, 0);
  // open_tcp_stream: OSError whose errno is the attempts' common one.
  EXPECT_EQ(errno_of([&] { (void)open_tcp_stream(arm.ip, port); }), ECONNREFUSED);
  // The socket call underneath.
  Socket socket = Socket::open(AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { socket.connect(address(arm.ip, port)); }), ECONNREFUSED);
  // The same port accepts once the holder listens.
  holder.listen(8);
  SocketListener listener(std::move(holder));
  SocketStream client = open_tcp_stream(arm.ip, port);
  std::unique_ptr<SocketStream> server = listener.accept();
  client.send_all(bytes("late"));
  EXPECT_EQ(receive_text(*server, 4), "late");
}

void tcp_round_trips_body(const Arm& arm) {
  open_nursery([&](Nursery& n) {
    CancelOnExit stop_server{n};
    const std::vector<SocketListener*> listeners = n.start<std::vector<SocketListener*>>(
        [&](TaskStatus<std::vector<SocketListener*>>& status) {
          serve_tcp(echo, 0, {.host = arm.ip, .task_status = &status});
        });
    ASSERT_EQ(listeners.size(), 1u);
    SocketStream stream = open_tcp_stream(arm.ip, listeners[0]->local_address().port());
    // One stream, one message after another: each comes back whole and in order.
    const std::size_t sizes[] = {1,     2,     3,       1000,  4095, 4096,         65535,
                                 65536, 65537, 1 << 20, 12345, 1,    (3 << 20) + 7};
    std::uint32_t seed = 1;
    for (const std::size_t size : sizes) {
      const std::vector<std::byte> data = pattern(size, seed++);
      std::vector<std::byte> echoed;
      open_nursery([&](Nursery& io) {
        // Sent while we read: a large message does not fit in the buffers.
        io.start_soon([&] { stream.send_all(data); });
        echoed = receive_exactly(stream, size);
      });
      EXPECT_EQ(echoed.size(), size);
      EXPECT_TRUE(echoed == data) << "content differs, size " << size;
    }
    // Many small send_all calls of varied sizes arrive as one byte stream, in order.
    const std::vector<std::byte> data = pattern(200'000, seed++);
    std::vector<std::byte> echoed;
    open_nursery([&](Nursery& io) {
      io.start_soon([&] {
        std::size_t at = 0;
        for (std::size_t piece = 1; at < data.size(); piece = piece * 7 % 997 + 1) {
          const std::size_t n = std::min(piece, data.size() - at);
          stream.send_all(std::span(data).subspan(at, n));
          at += n;
        }
      });
      echoed = receive_exactly(stream, data.size());
    });
    EXPECT_TRUE(echoed == data) << "content of the pieces differs";
    // Our EOF ends the handler; serve_tcp closes its end: we read the end of the stream.
    stream.send_eof();
    std::vector<std::byte> buffer(16);
    EXPECT_EQ(stream.receive_some(buffer), 0u);
  });
}

void tcp_half_close_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  SocketStream& server = *c.server;
  client.send_all(bytes("request"));
  client.send_eof();
  client.send_eof();  // idempotent
  // The server reads the data, then the end of the stream (again and again)...
  EXPECT_EQ(receive_until_eof(server), "request");
  std::vector<std::byte> buffer(16);
  EXPECT_EQ(server.receive_some(buffer), 0u);
  // ...and can still answer: the half-closed client receives.
  server.send_all(bytes("response"));
  server.send_eof();
  EXPECT_EQ(receive_until_eof(client), "response");
  // No sending after send_eof: ClosedResourceError, EPIPE from the socket call underneath.
  EXPECT_THROW(client.send_all(bytes("late")), ClosedResourceError);
  EXPECT_EQ(raw_send(client, bytes("late")).error, EPIPE);
  EXPECT_EQ(raw_send(server, bytes("late")).error, EPIPE);
}

// shutdown(SHUT_RD): what was already queued is still read (Linux's tcp_recvmsg reads the
// queue before it looks at the shutdown), then the end of the stream; the other direction
// is untouched.
void tcp_shutdown_read_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  SocketStream& server = *c.server;
  client.send_all(bytes("queued"));
  wait_readable(server);  // "queued" has arrived (one segment)
  Socket& socket = server.socket();
  ASSERT_EQ(errno_name(socket.network().shutdown(socket.handle(), SHUT_RD)), errno_name(0));
  EXPECT_EQ(receive_until_eof(server), "queued");
  const IoResult<std::size_t> raw = raw_recv(server);
  EXPECT_EQ(raw.error, 0) << errno_name(raw.error);
  EXPECT_EQ(raw.value, 0u);
  server.send_all(bytes("answer"));
  EXPECT_EQ(receive_text(client, 6), "answer");
}

void tcp_eof_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  c.server->send_all(bytes("last words"));
  c.server->close();
  // The data first, then the end of the stream, every time.
  EXPECT_EQ(receive_text(client, 10), "last words");
  std::vector<std::byte> buffer(16);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.receive_some(buffer), 0u) << "receive " << i;
  const IoResult<std::size_t> raw = raw_recv(client);
  EXPECT_EQ(raw.error, 0) << errno_name(raw.error);
  EXPECT_EQ(raw.value, 0u);
}

void tcp_reset_on_close_with_unread_data_body(const Arm& arm) {
  std::vector<std::byte> buffer(16);
  // As the stream reports it.
  {
    Connection c = connect_pair(arm.ip);
    SocketStream& client = c.client;
    SocketStream& server = *c.server;
    server.send_all(bytes("hello"));
    client.send_all(bytes("unread"));
    wait_readable(client);  // "hello" has arrived
    wait_readable(server);  // "unread" has arrived, and stays unread
    server.close();
    // What arrived before the reset is still read.
    EXPECT_EQ(receive_text(client, 5), "hello");
    EXPECT_THROW(client.receive_some(buffer), BrokenResourceError);  // ECONNRESET
    EXPECT_EQ(client.receive_some(buffer), 0u);                      // then end of stream
    EXPECT_THROW(client.send_all(bytes("x")), BrokenResourceError);  // EPIPE
  }
  // errno-exact, through the socket calls.
  {
    Connection c = connect_pair(arm.ip);
    SocketStream& client = c.client;
    SocketStream& server = *c.server;
    client.send_all(bytes("unread"));
    wait_readable(server);
    server.close();
    wait_readable(client);  // the reset makes it readable
    EXPECT_EQ(errno_name(raw_recv(client).error), "ECONNRESET");
    const IoResult<std::size_t> again = raw_recv(client);  // reported once
    EXPECT_EQ(again.error, 0) << errno_name(again.error);
    EXPECT_EQ(again.value, 0u);
    EXPECT_EQ(errno_name(raw_send(client, bytes("x")).error), "EPIPE");
  }
}

void tcp_send_after_peer_closed_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  c.server->close();
  std::vector<std::byte> buffer(16);
  EXPECT_EQ(client.receive_some(buffer), 0u);  // the FIN has arrived
  // The first send is accepted; the peer's answer is a reset, which a later send reports.
  const IoResult<std::size_t> first = raw_send(client, bytes("x"));
  EXPECT_EQ(first.error, 0) << errno_name(first.error);
  int error = 0;
  // The reset travels asynchronously: poll for it (bounded) without assuming when it lands.
  for (int attempt = 0; attempt < 10'000 && error == 0; ++attempt) {
    sleep(1ms);
    error = raw_send(client, bytes("x")).error;
  }
  EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << errno_name(error);
  EXPECT_EQ(errno_name(error), "EPIPE");
  // From then on the stream is broken for sending, and at its end for receiving.
  EXPECT_THROW(client.send_all(bytes("x")), BrokenResourceError);
  EXPECT_EQ(errno_name(raw_send(client, bytes("x")).error), "EPIPE");
  EXPECT_EQ(client.receive_some(buffer), 0u);
}

void tcp_back_pressure_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  SocketStream& server = *c.server;
  constexpr std::uint32_t kSeed = 5;
  // With the peer not reading, the socket takes a bounded amount and then says EAGAIN.
  constexpr std::uint64_t kBufferedMax = 16 << 20;
  const std::uint64_t buffered = fill_until_eagain(client, kSeed, kBufferedMax);
  EXPECT_GT(buffered, 0u);
  EXPECT_LT(buffered, kBufferedMax) << "the connection buffers without limit";
  // send_all of more than that blocks until the reader drains, then completes.
  const std::uint64_t more_size = 2 * buffered + (1 << 20);
  const std::vector<std::byte> more = pattern(more_size, kSeed, buffered);
  bool sent = false;
  std::vector<std::byte> received;
  open_nursery([&](Nursery& n) {
    n.start_soon([&] {
      client.send_all(more);
      sent = true;
    });
    fakes::wait_all_tasks_blocked();
    EXPECT_FALSE(sent) << "send_all returned although nobody reads";
    received = receive_exactly(server, buffered + more_size);
  });
  EXPECT_TRUE(sent);
  EXPECT_TRUE(received == pattern(buffered + more_size, kSeed)) << "content differs";
}

void tcp_accept_queued_connections_body(const Arm& arm) {
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
  ASSERT_EQ(listeners.size(), 1u);
  const std::uint16_t port = listeners[0]->local_address().port();
  // Connections complete without accept (the kernel queues them), each sends its name.
  constexpr int kConnections = 5;
  std::vector<SocketStream> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(open_tcp_stream(arm.ip, port));
    clients.back().send_all(bytes("client " + std::to_string(i)));
  }
  // Accepted in the order they connected.
  for (int i = 0; i < kConnections; ++i) {
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    const std::string name = "client " + std::to_string(i);
    EXPECT_EQ(str(server->socket().peer_address()),
              str(clients[static_cast<std::size_t>(i)].socket().local_address()));
    EXPECT_EQ(receive_text(*server, name.size()), name);
  }
}

void tcp_listener_close_body(const Arm& arm) {
  // A task waiting in accept is woken with ClosedResourceError.
  {
    std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
    ASSERT_EQ(listeners.size(), 1u);
    SocketListener& listener = *listeners[0];
    bool returned = false;
    bool closed = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          (void)listener.accept();
          returned = true;
        } catch (const ClosedResourceError&) {
          closed = true;
        }
      });
      fakes::wait_all_tasks_blocked();
      EXPECT_FALSE(returned || closed) << "accept returned with nobody connecting";
      listener.close();
    });
    EXPECT_TRUE(closed);
    EXPECT_THROW((void)listener.accept(), ClosedResourceError);
  }
  // A connection that was queued but never accepted is reset.
  {
    std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
    ASSERT_EQ(listeners.size(), 1u);
    SocketStream client = open_tcp_stream(arm.ip, listeners[0]->local_address().port());
    listeners[0]->close();
    std::vector<std::byte> buffer(16);
    EXPECT_THROW(client.receive_some(buffer), BrokenResourceError);  // ECONNRESET
    EXPECT_EQ(client.receive_some(buffer), 0u);
    EXPECT_THROW(client.send_all(bytes("x")), BrokenResourceError);  // EPIPE
  }
}

void tcp_closed_stream_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  std::vector<std::byte> buffer(16);
  // A task blocked in receive_some when the stream is closed: ClosedResourceError.
  bool returned = false;
  bool closed = false;
  open_nursery([&](Nursery& n) {
    n.start_soon([&] {
      try {
        std::vector<std::byte> own(16);
        (void)client.receive_some(own);
        returned = true;
      } catch (const ClosedResourceError&) {
        closed = true;
      }
    });
    fakes::wait_all_tasks_blocked();
    EXPECT_FALSE(returned || closed) << "receive_some returned with nothing sent";
    client.close();
  });
  EXPECT_TRUE(closed);
  // Every later use: ClosedResourceError; closing again is fine.
  EXPECT_THROW(client.send_all(bytes("x")), ClosedResourceError);
  EXPECT_THROW(client.receive_some(buffer), ClosedResourceError);
  EXPECT_THROW(client.send_eof(), ClosedResourceError);
  EXPECT_THROW(client.wait_send_all_might_not_block(), ClosedResourceError);
  EXPECT_THROW((void)client.socket().local_address(), ClosedResourceError);
  EXPECT_NO_THROW(client.close());
  // The peer reads the end of the stream.
  EXPECT_EQ(c.server->receive_some(buffer), 0u);
}

void tcp_concurrent_use_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  SocketStream& client = c.client;
  std::vector<std::byte> buffer(16);
  // Full buffers: the next send_all blocks (the server does not read).
  const std::uint64_t buffered = fill_until_eagain(client, 9, 16 << 20);
  const std::vector<std::byte> more = pattern(1 << 20, 9, buffered);
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
  ASSERT_EQ(listeners.size(), 1u);
  open_nursery([&](Nursery& n) {
    n.start_soon([&] { client.send_all(more); });
    n.start_soon([&] {
      std::vector<std::byte> own(16);
      (void)client.receive_some(own);
    });
    n.start_soon([&] { (void)listeners[0]->accept(); });
    fakes::wait_all_tasks_blocked();
    // One sender, one receiver, one acceptor at a time.
    EXPECT_THROW(client.send_all(bytes("x")), BusyResourceError);
    EXPECT_THROW(client.send_eof(), BusyResourceError);
    EXPECT_THROW(client.wait_send_all_might_not_block(), BusyResourceError);
    EXPECT_THROW(client.receive_some(buffer), BusyResourceError);
    EXPECT_THROW((void)listeners[0]->accept(), BusyResourceError);
    n.cancel_scope().cancel();
  });
}

void tcp_socket_options_body(const Arm& arm) {
  Connection c = connect_pair(arm.ip);
  Socket& socket = c.client.socket();
  EXPECT_EQ(socket.get_option(SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  EXPECT_EQ(socket.get_option(SOL_SOCKET, SO_ERROR), 0);
  socket.set_option(SOL_SOCKET, SO_KEEPALIVE, 0);
  EXPECT_EQ(socket.get_option(SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_NE(socket.get_option(IPPROTO_TCP, TCP_NODELAY), 0);  // SocketStream turned it on
  socket.set_option(SOL_SOCKET, SO_KEEPALIVE, 1);
  EXPECT_NE(socket.get_option(SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(errno_of([&] { socket.set_option(SOL_SOCKET, SO_LINGER, 0); }), EINVAL);
}

void tcp_port_in_use_body(const Arm& arm) {
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, arm.ip);
  ASSERT_EQ(listeners.size(), 1u);
  const std::uint16_t port = listeners[0]->local_address().port();
  // Another listener (SO_REUSEADDR does not share a listening port), a plain bind.
  EXPECT_EQ(errno_of([&] { (void)open_tcp_listeners(port, arm.ip); }), EADDRINUSE);
  Socket socket = Socket::open(AF_INET, SOCK_STREAM);
  EXPECT_EQ(errno_of([&] { socket.bind(address(arm.ip, port)); }), EADDRINUSE);
  // With the listener closed, the port is free again, even while a connection it accepted
  // lives on (a server restarting on its port).
  SocketStream client = open_tcp_stream(arm.ip, port);
  std::unique_ptr<SocketStream> server = listeners[0]->accept();
  listeners[0]->close();
  std::vector<std::unique_ptr<SocketListener>> again = open_tcp_listeners(port, arm.ip);
  ASSERT_EQ(again.size(), 1u);
  SocketStream second = open_tcp_stream(arm.ip, port);
  std::unique_ptr<SocketStream> second_server = again[0]->accept();
  client.send_all(bytes("old"));
  second.send_all(bytes("new"));
  EXPECT_EQ(receive_text(*server, 3), "old");
  EXPECT_EQ(receive_text(*second_server, 3), "new");
}

// ---- UDP -------------------------------------------------------------------------------------

void udp_send_receive_body(const Arm& arm) {
  UdpSocket a = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket b = UdpSocket::bind(address(arm.ip, 0));
  EXPECT_EQ(a.local_address().host(), arm.ip);
  EXPECT_NE(a.local_address().port(), 0);
  EXPECT_NE(a.local_address().port(), b.local_address().port());
  std::vector<std::byte> buffer(2048);
  // The receiver learns the sender's address, and answers there.
  b.send_to(bytes("hello"), a.local_address());
  Datagram got = a.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "hello");
  EXPECT_EQ(str(got.from), str(b.local_address()));
  a.send_to(bytes("hello back"), got.from);
  got = b.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "hello back");
  EXPECT_EQ(str(got.from), str(a.local_address()));
  // An unbound socket is bound to an ephemeral port (on the wildcard) by its first send.
  UdpSocket c(AF_INET);
  c.send_to(bytes("from c"), a.local_address());
  got = a.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "from c");
  EXPECT_EQ(got.from.host(), arm.ip);
  EXPECT_NE(got.from.port(), 0);
  EXPECT_EQ(c.local_address().port(), got.from.port());
  EXPECT_EQ(c.local_address().host(), "0.0.0.0");
  // One receiver at a time; closing wakes the one waiting with ClosedResourceError.
  bool closed = false;
  open_nursery([&](Nursery& n) {
    n.start_soon([&] {
      try {
        std::vector<std::byte> own(16);
        (void)a.receive_from(own);
      } catch (const ClosedResourceError&) {
        closed = true;
      }
    });
    fakes::wait_all_tasks_blocked();
    EXPECT_THROW((void)a.receive_from(buffer), BusyResourceError);
    a.close();
  });
  EXPECT_TRUE(closed);
  EXPECT_THROW((void)a.receive_from(buffer), ClosedResourceError);
  EXPECT_THROW(a.send_to(bytes("x"), b.local_address()), ClosedResourceError);
}

void udp_datagram_boundaries_body(const Arm& arm) {
  UdpSocket receiver = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket sender = UdpSocket::bind(address(arm.ip, 0));
  // Sizes from empty to the IPv4 maximum (65535 - 20 - 8), sent back to back.
  constexpr std::size_t kDatagramSizeMax = 65507;
  std::map<std::size_t, std::vector<std::byte>> sent;
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, kDatagramSizeMax}) {
    sent[size] = pattern(size, static_cast<std::uint32_t>(size) + 1);
    sender.send_to(sent[size], receiver.local_address());
  }
  // Each arrives whole and alone (UDP promises no order: compared by size).
  std::map<std::size_t, std::vector<std::byte>> received;
  std::vector<std::byte> buffer(kDatagramSizeMax + 1);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const Datagram got = receiver.receive_from(buffer);
    EXPECT_EQ(str(got.from), str(sender.local_address()));
    EXPECT_FALSE(received.contains(got.size)) << "two datagrams of " << got.size << " bytes";
    received[got.size].assign(buffer.begin(),
                              buffer.begin() + static_cast<std::ptrdiff_t>(got.size));
  }
  EXPECT_TRUE(received == sent) << "datagrams differ";
  // One byte more than fits in an IPv4 datagram.
  EXPECT_EQ(
      errno_of([&] { sender.send_to(pattern(kDatagramSizeMax + 1, 1), receiver.local_address()); }),
      EMSGSIZE);
}

void udp_truncation_body(const Arm& arm) {
  UdpSocket receiver = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket sender = UdpSocket::bind(address(arm.ip, 0));
  // A datagram longer than the buffer: the buffer's worth, the rest is discarded...
  sender.send_to(bytes("0123456789"), receiver.local_address());
  std::vector<std::byte> small(4);
  Datagram got = receiver.receive_from(small);
  EXPECT_EQ(got.size, 4u);
  EXPECT_EQ(text(small), "0123");
  EXPECT_EQ(str(got.from), str(sender.local_address()));
  // ...so the next receive gets the next datagram.
  sender.send_to(bytes("ab"), receiver.local_address());
  std::vector<std::byte> buffer(100);
  got = receiver.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "ab");
  std::vector<std::byte> none;
  EXPECT_THROW((void)receiver.receive_from(none), std::invalid_argument);
}

void udp_nobody_bound_body(const Arm& arm) {
  // A port nobody is bound to (bound once, to be sure it was free, and closed again).
  std::uint16_t dead_port = 0;
  {
    UdpSocket reserve = UdpSocket::bind(address(arm.ip, 0));
    dead_port = reserve.local_address().port();
    reserve.close();
  }
  const SocketAddress dead = address(arm.ip, dead_port);
  std::vector<std::byte> buffer(100);
  // Unconnected: sending succeeds, and the port-unreachable that comes back is not reported:
  // the next receive gets the next datagram.
  UdpSocket a = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket b = UdpSocket::bind(address(arm.ip, 0));
  EXPECT_EQ(errno_of([&] { a.send_to(bytes("anyone?"), dead); }), 0);
  EXPECT_EQ(errno_of([&] { a.send_to(bytes("anyone?"), dead); }), 0);
  b.send_to(bytes("marker"), a.local_address());
  Datagram got;
  EXPECT_EQ(errno_of([&] { got = a.receive_from(buffer); }), 0);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "marker");
  // Connected: the send succeeds; the error reaches the socket's next call, once.
  UdpSocket connected = UdpSocket::bind(address(arm.ip, 0));
  connected.socket().connect(dead);
  EXPECT_EQ(errno_of([&] { connected.send_to(bytes("anyone?"), dead); }), 0);
  EXPECT_EQ(errno_of([&] { (void)connected.receive_from(buffer); }), ECONNREFUSED);
  EXPECT_EQ(errno_of([&] { connected.send_to(bytes("anyone?"), dead); }), 0);
  // The error makes the socket readable; the send after it reports it.
  connected.socket().io().wait_readable(connected.socket().handle());
  EXPECT_EQ(errno_of([&] { connected.send_to(bytes("anyone?"), dead); }), ECONNREFUSED);
}

void udp_connected_peer_filter_body(const Arm& arm) {
  UdpSocket peer = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket stranger = UdpSocket::bind(address(arm.ip, 0));
  UdpSocket connected = UdpSocket::bind(address(arm.ip, 0));
  connected.socket().connect(peer.local_address());
  EXPECT_EQ(str(connected.socket().peer_address()), str(peer.local_address()));
  // The stranger's datagram lands first, the peer's later; only the peer's is received.
  // (The sleep changes nothing on a correct network; it lets the stray land first in the
  // simulator, where a datagram takes up to NetworkConfig::latency_max, 2 ms by default, so
  // that a missing filter shows. The real loopback delivers during the send.)
  stranger.send_to(bytes("stray"), connected.local_address());
  sleep(20ms);
  peer.send_to(bytes("expected"), connected.local_address());
  std::vector<std::byte> buffer(100);
  const Datagram got = connected.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(got.size)), "expected");
  EXPECT_EQ(str(got.from), str(peer.local_address()));
  // Its answers go to the peer.
  connected.send_to(bytes("answer"), peer.local_address());
  const Datagram answer = peer.receive_from(buffer);
  EXPECT_EQ(text(std::span(buffer).first(answer.size)), "answer");
  EXPECT_EQ(str(answer.from), str(connected.local_address()));
}

void udp_port_in_use_body(const Arm& arm) {
  UdpSocket a = UdpSocket::bind(address(arm.ip, 0));
  const std::uint16_t port = a.local_address().port();
  EXPECT_EQ(errno_of([&] { (void)UdpSocket::bind(address(arm.ip, port)); }), EADDRINUSE);
  EXPECT_EQ(errno_of([&] { (void)UdpSocket::bind(address("0.0.0.0", port)); }), EADDRINUSE);
}

// TLS over TCP (trellis::tls): SslStream over the arm's sockets passes Trio's two-way stream
// checks, the server's certificate verified against the arm's IP address. In the sim arm
// this is TLS over simulated TCP, the same code.
void tls_over_tcp_two_way_body(const Arm& arm) {
  static fakes::TestCertificateAuthority ca;
  SslContext server = SslContext::server();
  SslContext client = SslContext::client();
  ca.issue_server_certificate({arm.ip}).configure(server);
  ca.configure_trust(client);
  std::unique_ptr<SocketListener> listener = std::move(open_tcp_listeners(0, arm.ip).at(0));
  const std::uint16_t port = listener->local_address().port();
  fakes::check_two_way_stream(
      [&]() -> std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> {
        std::unique_ptr<SocketStream> accepted;
        std::optional<SocketStream> connected;
        open_nursery([&](Nursery& n) {
          n.start_soon([&] { accepted = listener->accept(); });
          connected.emplace(open_tcp_stream(arm.ip, port));
        });
        return {std::make_unique<SslStream>(std::make_unique<SocketStream>(std::move(*connected)),
                                            client, SslStream::Options{.server_hostname = arm.ip}),
                std::make_unique<SslStream>(std::move(accepted), server,
                                            SslStream::Options{.server_side = true})};
      },
      nullptr);
}

// ---- the tests: each body in both arms ---------------------------------------------------

TEST_P(NetworkConformance, TcpConnectAndAcceptSeeEachOthersAddresses) {
  in_arm(tcp_connect_and_accept_body);
}
TEST_P(NetworkConformance, TcpConnectWithoutListenerIsRefused) {
  in_arm(tcp_connect_refused_body);
}
TEST_P(NetworkConformance, TcpRoundTripsKeepOrderAndContent) {
  in_arm(tcp_round_trips_body);
}
TEST_P(NetworkConformance, TcpHalfCloseLetsThePeerAnswer) {
  in_arm(tcp_half_close_body);
}
TEST_P(NetworkConformance, TcpPeerCloseIsEndOfStreamRepeatedly) {
  in_arm(tcp_eof_body);
}
TEST_P(NetworkConformance, TcpShutdownReadStillReadsQueuedData) {
  in_arm(tcp_shutdown_read_body);
}
TEST_P(NetworkConformance, TcpCloseWithUnreadDataResets) {
  in_arm(tcp_reset_on_close_with_unread_data_body);
}
TEST_P(NetworkConformance, TcpSendingAfterPeerClosedBreaks) {
  in_arm(tcp_send_after_peer_closed_body);
}
TEST_P(NetworkConformance, TcpSenderBlocksUntilReaderDrains) {
  in_arm(tcp_back_pressure_body);
}
TEST_P(NetworkConformance, TcpAcceptsQueuedConnectionsInOrder) {
  in_arm(tcp_accept_queued_connections_body);
}
TEST_P(NetworkConformance, TcpClosingListenerWakesAcceptAndResetsQueued) {
  in_arm(tcp_listener_close_body);
}
TEST_P(NetworkConformance, TcpClosedStreamRaisesClosedResourceError) {
  in_arm(tcp_closed_stream_body);
}
TEST_P(NetworkConformance, TcpConcurrentUseRaisesBusyResourceError) {
  in_arm(tcp_concurrent_use_body);
}
TEST_P(NetworkConformance, TcpSocketOptions) {
  in_arm(tcp_socket_options_body);
}
TEST_P(NetworkConformance, TcpPortInUse) {
  in_arm(tcp_port_in_use_body);
}
TEST_P(NetworkConformance, UdpDatagramsCarryTheSendersAddress) {
  in_arm(udp_send_receive_body);
}
TEST_P(NetworkConformance, UdpDatagramBoundariesAndSizeLimit) {
  in_arm(udp_datagram_boundaries_body);
}
TEST_P(NetworkConformance, UdpReceiveTruncatesToTheBuffer) {
  in_arm(udp_truncation_body);
}
TEST_P(NetworkConformance, UdpSendToPortNobodyIsBoundTo) {
  in_arm(udp_nobody_bound_body);
}
TEST_P(NetworkConformance, UdpConnectedSocketHearsOnlyItsPeer) {
  in_arm(udp_connected_peer_filter_body);
}
TEST_P(NetworkConformance, UdpPortInUse) {
  in_arm(udp_port_in_use_body);
}

TEST_P(NetworkConformance, TlsOverTcpPassesTheTwoWayStreamChecks) {
  in_arm(tls_over_tcp_two_way_body);
}

INSTANTIATE_TEST_SUITE_P(Arms, NetworkConformance,
                         ::testing::Values(ArmKind::kPosix, ArmKind::kSim),
                         [](const ::testing::TestParamInfo<ArmKind>& info) {
                           return info.param == ArmKind::kPosix ? "Posix" : "Sim";
                         });

}  // namespace
}  // namespace trellis
