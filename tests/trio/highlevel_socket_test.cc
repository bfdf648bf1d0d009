// Ports of Trio's src/trio/_tests/test_highlevel_socket.py,
// test_highlevel_open_tcp_listeners.py and test_highlevel_serve_listeners.py (each test names
// the Trio test it follows). serve_listeners is tested, as in Trio, against an in-memory
// listener; the socket classes against real loopback sockets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trellis/fakes/mock_clock.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/io/serve_listeners.h"
#include "trellis/io/tcp.h"
#include "trellis/sync/event.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using Listeners = std::vector<SocketListener*>;

std::span<const std::byte> bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string receive_text(ReceiveStream& stream, std::size_t max = 100) {
  std::vector<std::byte> buffer(max);
  const std::size_t n = stream.receive_some(buffer);
  return std::string(reinterpret_cast<const char*>(buffer.data()), n);
}

// ---- test_highlevel_socket.py ----------------------------------------------------------------

// test_SocketStream_basics
TEST(TrioHighlevelSocket, SocketStreamBasics) {
  run([] {
    // Not a stream socket.
    Socket udp = Socket::open(AF_INET, SOCK_DGRAM);
    EXPECT_THROW(SocketStream{std::move(udp)}, std::invalid_argument);
    EXPECT_THROW(SocketStream{Socket{}}, std::invalid_argument);

    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    SocketStream client = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    for (SocketStream* s : {&client, server.get()}) {
      EXPECT_NE(s->socket().get_option(IPPROTO_TCP, TCP_NODELAY), 0);
      s->socket().set_option(IPPROTO_TCP, TCP_NODELAY, 0);
      EXPECT_EQ(s->socket().get_option(IPPROTO_TCP, TCP_NODELAY), 0);
    }
    EXPECT_EQ(client.socket().local_address(), server->socket().peer_address());
  });
}

// test_SocketStream_send_all: a big send_all against a slow reader, in pieces.
TEST(TrioHighlevelSocket, SocketStreamSendAllBigPayload) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    SocketStream a = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
    std::unique_ptr<SocketStream> b = listeners[0]->accept();
    const std::string big(1 << 20, 'b');
    std::size_t received = 0;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { a.send_all(bytes(big)); });
      n.start_soon([&] {
        std::vector<std::byte> buffer(1000);  // small reads: the sender must wait
        while (received < big.size()) received += b->receive_some(buffer);
      });
    });
    EXPECT_EQ(received, big.size());
    a.send_all({});  // an empty send is a checkpoint, nothing else
  });
}

// test_SocketListener
TEST(TrioHighlevelSocket, SocketListenerAccepts) {
  run([] {
    Socket udp = Socket::open(AF_INET, SOCK_DGRAM);
    EXPECT_THROW(SocketListener{std::move(udp)}, std::invalid_argument);

    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    SocketListener& listener = *listeners[0];
    SocketStream client = open_tcp_stream("127.0.0.1", listener.local_address().port());
    std::unique_ptr<SocketStream> server = listener.accept();
    EXPECT_EQ(server->socket().peer_address(), client.socket().local_address());
    listener.close();
    EXPECT_THROW(listener.accept(), ClosedResourceError);
  });
}

// test_SocketListener_socket_closed_underfoot
TEST(TrioHighlevelSocket, SocketListenerSocketClosedUnderfoot) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    listeners[0]->socket().close();
    EXPECT_THROW(listeners[0]->accept(), ClosedResourceError);
  });
}

// test_socket_stream_works_when_peer_has_already_closed
TEST(TrioHighlevelSocket, SocketStreamWorksWhenPeerHasAlreadyClosed) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    SocketStream client = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    server->send_all(bytes("x"));
    server->close();
    EXPECT_EQ(receive_text(client), "x");
    EXPECT_EQ(receive_text(client), "");
  });
}

// ---- test_highlevel_open_tcp_listeners.py ----------------------------------------------------

// test_open_tcp_listeners_basic
TEST(TrioOpenTcpListeners, Basic) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    ASSERT_EQ(listeners.size(), 1u);
    SocketListener& listener = *listeners[0];
    EXPECT_NE(listener.socket().get_option(SOL_SOCKET, SO_REUSEADDR), 0);
    SocketStream client = open_tcp_stream("127.0.0.1", listener.local_address().port());
    std::unique_ptr<SocketStream> server = listener.accept();
    client.send_all(bytes("x"));
    EXPECT_EQ(receive_text(*server), "x");
  });
}

// test_open_tcp_listeners_specific_port_specific_host
TEST(TrioOpenTcpListeners, SpecificPortSpecificHost) {
  run([] {
    // Find a free port, release it, bind it explicitly.
    std::uint16_t port = 0;
    {
      auto probe = open_tcp_listeners(0, "127.0.0.1");
      port = probe[0]->local_address().port();
    }
    auto listeners = open_tcp_listeners(port, "127.0.0.1");
    ASSERT_EQ(listeners.size(), 1u);
    EXPECT_EQ(listeners[0]->local_address(), *SocketAddress::parse("127.0.0.1", port));
  });
}

// test_open_tcp_listeners_ipv6_v6only
TEST(TrioOpenTcpListeners, Ipv6V6only) {
  run([] {
    std::vector<std::unique_ptr<SocketListener>> listeners;
    try {
      listeners = open_tcp_listeners(0, "::1");
    } catch (const OSError&) {
      GTEST_SKIP() << "no IPv6 loopback";
    }
    ASSERT_EQ(listeners.size(), 1u);
    EXPECT_NE(listeners[0]->socket().get_option(IPPROTO_IPV6, IPV6_V6ONLY), 0);
    const std::uint16_t port = listeners[0]->local_address().port();
    EXPECT_THROW((void)open_tcp_stream("127.0.0.1", port), OSError);
  });
}

// test_open_tcp_listeners_rebind
TEST(TrioOpenTcpListeners, RebindAfterAConnectionWasOpen) {
  run([] {
    std::uint16_t port = 0;
    {
      auto listeners = open_tcp_listeners(0, "127.0.0.1");
      port = listeners[0]->local_address().port();
      // Make a connection and close the server side first, so its port sits in TIME_WAIT.
      SocketStream client = open_tcp_stream("127.0.0.1", port);
      std::unique_ptr<SocketStream> server = listeners[0]->accept();
      server->close();
      EXPECT_EQ(receive_text(client), "");
      client.close();
    }
    // SO_REUSEADDR: rebinding works at once.
    auto again = open_tcp_listeners(port, "127.0.0.1");
    EXPECT_EQ(again[0]->local_address().port(), port);
  });
}

// test_open_tcp_listeners_multiple_host_cleanup_on_error: "localhost" may give several
// addresses; when one bind fails, nothing stays open.
TEST(TrioOpenTcpListeners, CleanupOnError) {
  run([] {
    auto first = open_tcp_listeners(0, "127.0.0.1");
    const std::uint16_t port = first[0]->local_address().port();
    EXPECT_THROW((void)open_tcp_listeners(port, "localhost"), OSError);
    // The original listener is unharmed.
    SocketStream client = open_tcp_stream("127.0.0.1", port);
    std::unique_ptr<SocketStream> server = first[0]->accept();
  });
}

// test_serve_tcp
TEST(TrioOpenTcpListeners, ServeTcp) {
  run([] {
    open_nursery([](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp([](SocketStream&) {}, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      SocketStream client = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
      // The handler returns at once: the server closes the connection.
      EXPECT_EQ(receive_text(client), "");
      n.cancel_scope().cancel();
    });
  });
}

// ---- test_highlevel_serve_listeners.py -------------------------------------------------------

struct Record {
  int forceful_closes = 0;
  int gentle_closes = 0;
  int listeners_closed = 0;
  int accept_hook_calls = 0;
};

// A stream that records how it was closed (forcefully: inside a cancelled scope).
class RecordingStream final : public Stream {
 public:
  RecordingStream(Record& record, int id) : record_(record), id_(id) {}
  void send_all(std::span<const std::byte>) override { checkpoint(); }
  void wait_send_all_might_not_block() override { checkpoint(); }
  std::size_t receive_some(std::span<std::byte>) override {
    checkpoint();
    return 0;
  }
  void close() override {
    try {
      checkpoint_if_cancelled();
      ++record_.gentle_closes;
    } catch (...) {
      ++record_.forceful_closes;
      throw;
    }
  }
  int id() const { return id_; }

 private:
  Record& record_;
  int id_;
};

// Trio's MemoryListener: connections are queued by connect(); accept() takes them in order.
class MemoryListener final : public Listener<RecordingStream> {
 public:
  explicit MemoryListener(Record& record) : record_(record) {}
  void connect(int id) {
    queued_.push_back(std::make_unique<RecordingStream>(record_, id));
    arrived_->set();
  }
  std::unique_ptr<RecordingStream> accept() override {
    checkpoint();
    if (accept_hook) accept_hook();
    while (queued_.empty()) {
      arrived_ = std::make_unique<Event>();
      arrived_->wait();
    }
    std::unique_ptr<RecordingStream> stream = std::move(queued_.front());
    queued_.pop_front();
    return stream;
  }
  void close() override {
    ++record_.listeners_closed;
    checkpoint();
  }
  std::function<void()> accept_hook;

 private:
  Record& record_;
  std::deque<std::unique_ptr<RecordingStream>> queued_;
  std::unique_ptr<Event> arrived_ = std::make_unique<Event>();
};

using MemoryListeners = std::vector<MemoryListener*>;

// test_serve_listeners_basic
TEST(TrioServeListeners, Basic) {
  Record record;
  std::vector<int> handled;
  run([&] {
    std::vector<std::unique_ptr<MemoryListener>> listeners;
    listeners.push_back(std::make_unique<MemoryListener>(record));
    listeners.push_back(std::make_unique<MemoryListener>(record));
    open_nursery([&](Nursery& n) {
      MemoryListeners reported = n.start<MemoryListeners>([&](TaskStatus<MemoryListeners>& s) {
        serve_listeners<MemoryListener>(
            [&](RecordingStream& stream) { handled.push_back(stream.id()); }, std::move(listeners),
            {.task_status = &s});
      });
      ASSERT_EQ(reported.size(), 2u);
      for (int i = 0; i < 3; ++i) {
        reported[0]->connect(i);
        reported[1]->connect(10 + i);
      }
      fakes::wait_all_tasks_blocked();
      // Every stream was handled and then closed forcefully.
      EXPECT_EQ(handled.size(), 6u);
      EXPECT_EQ(record.forceful_closes, 6);
      EXPECT_EQ(record.gentle_closes, 0);
      n.cancel_scope().cancel();
    });
  });
  EXPECT_EQ(record.listeners_closed, 2);
}

// test_serve_listeners_accept_unrecognized_error
TEST(TrioServeListeners, AcceptUnrecognizedErrorStopsTheServer) {
  for (int which = 0; which < 2; ++which) {
    Record record;
    run([&] {
      std::vector<std::unique_ptr<MemoryListener>> listeners;
      listeners.push_back(std::make_unique<MemoryListener>(record));
      listeners[0]->accept_hook = [which] {
        if (which == 0) throw std::out_of_range("KeyError");
        throw OSError(ECONNABORTED, "accept");
      };
      try {
        serve_listeners<MemoryListener>(nullptr, std::move(listeners));
        ADD_FAILURE() << "serve_listeners returned";
      } catch (const ExceptionGroup& group) {
        ASSERT_EQ(group.exceptions().size(), 1u);
        if (which == 0) {
          EXPECT_TRUE(group.contains<std::out_of_range>());
        } else {
          EXPECT_TRUE(group.contains<OSError>());
        }
      }
    });
    EXPECT_EQ(record.listeners_closed, 1);
  }
}

// test_serve_listeners_accept_capacity_error: EMFILE retries every 100 ms.
TEST(TrioServeListeners, AcceptCapacityErrorRetriesEvery100ms) {
  for (int error : {EMFILE, ENFILE, ENOMEM, ENOBUFS}) {
    Record record;
    fakes::MockClock clock;
    clock.set_autojump_threshold(Duration::zero());
    run(
        [&] {
          std::vector<std::unique_ptr<MemoryListener>> listeners;
          listeners.push_back(std::make_unique<MemoryListener>(record));
          listeners[0]->accept_hook = [&record, error] {
            ++record.accept_hook_calls;
            throw OSError(error, "accept");
          };
          // Retries at 0, 100, ..., 900 ms: 10 attempts in 950 ms.
          (void)move_on_after(
              950ms, [&] { serve_listeners<MemoryListener>(nullptr, std::move(listeners)); });
        },
        {.clock = &clock});
    EXPECT_EQ(record.accept_hook_calls, 10) << errno_name(error);
  }
}

// test_serve_listeners_connection_nursery
TEST(TrioServeListeners, HandlersRunInTheGivenNursery) {
  Record record;
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  struct Done : std::runtime_error {
    Done() : std::runtime_error("done") {}
  };
  run(
      [&] {
        try {
          open_nursery([&](Nursery& n) {
            Nursery* handler_nursery = n.start<Nursery*>([](TaskStatus<Nursery*>& status) {
              open_nursery([&](Nursery& inner) {
                status.started(&inner);
                fakes::wait_all_tasks_blocked();
                EXPECT_EQ(inner.child_count(), 10u);
                throw Done();
              });
            });
            std::vector<std::unique_ptr<MemoryListener>> listeners;
            listeners.push_back(std::make_unique<MemoryListener>(record));
            MemoryListener* listener = listeners[0].get();
            n.start<MemoryListeners>([&](TaskStatus<MemoryListeners>& s) {
              serve_listeners<MemoryListener>(
                  [](RecordingStream&) { sleep(1s); }, std::move(listeners),
                  {.handler_nursery = handler_nursery, .task_status = &s});
            });
            for (int i = 0; i < 10; ++i) listener->connect(i);
          });
          ADD_FAILURE() << "no Done";
        } catch (const ExceptionGroup& group) {
          EXPECT_TRUE(group.contains<Done>());
        }
      },
      {.clock = &clock});
}

}  // namespace
}  // namespace trellis
