// SocketStream, SocketListener, open_tcp_stream, open_tcp_listeners and serve_tcp on the real
// epoll backend over loopback: echo, backpressure, half-close, the error translations
// (ECONNREFUSED, unresolvable names, resets, closed streams, concurrent use), unix sockets,
// UDP, and no descriptor or thread left behind.
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "net_test_util.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/io/udp_socket.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using testing::bytes;
using testing::receive_exactly;
using testing::text;
using Listeners = std::vector<SocketListener*>;

void echo(SocketStream& stream) {
  std::vector<std::byte> buffer(4096);
  while (std::size_t n = stream.receive_some(buffer)) stream.send_all(std::span(buffer).first(n));
}

TEST(SocketStream, LoopbackEchoThroughServeTcp) {
  run([] {
    open_nursery([](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp(echo, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      ASSERT_EQ(listeners.size(), 1u);
      const std::uint16_t port = listeners[0]->local_address().port();
      EXPECT_NE(port, 0);
      SocketStream client = open_tcp_stream("127.0.0.1", port);
      client.send_all(bytes("hello, trellis"));
      EXPECT_EQ(receive_exactly(client, 14), "hello, trellis");
      client.send_eof();
      std::vector<std::byte> buffer(16);
      EXPECT_EQ(client.receive_some(buffer), 0u);  // the handler returned and closed
      client.close();
      n.cancel_scope().cancel();
    });
  });
}

TEST(SocketStream, ServeTcpWithoutHostListensOnIpv4AndIpv6WithTheirOwnPorts) {
  run([] {
    open_nursery([](Nursery& n) {
      Listeners listeners = n.start<Listeners>(
          [](TaskStatus<Listeners>& status) { serve_tcp(echo, 0, {.task_status = &status}); });
      ASSERT_GE(listeners.size(), 1u);
      for (SocketListener* listener : listeners) {
        const SocketAddress address = listener->local_address();
        EXPECT_NE(address.port(), 0);
        const std::string host = address.family() == AF_INET6 ? "::1" : "127.0.0.1";
        SocketStream client = open_tcp_stream(host, address.port());
        client.send_all(bytes("x"));
        EXPECT_EQ(receive_exactly(client, 1), "x");
      }
      n.cancel_scope().cancel();
    });
  });
}

TEST(SocketStream, TcpNodelayIsSet) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    EXPECT_NE(client.socket().get_option(IPPROTO_TCP, TCP_NODELAY), 0);
    EXPECT_NE(server.socket().get_option(IPPROTO_TCP, TCP_NODELAY), 0);
  });
}

TEST(SocketStream, SendAllAppliesBackpressureAndDeliversEverything) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    // Far more than the socket buffers hold: send_all must block until the reader drains.
    std::string payload(8 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + 3);
    std::string received;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        client.send_all(bytes(payload));
        client.send_eof();
      });
      n.start_soon([&] {
        std::vector<std::byte> buffer(65536);
        while (std::size_t got = server.receive_some(buffer)) {
          received += text(std::span(buffer).first(got));
        }
      });
    });
    EXPECT_EQ(received.size(), payload.size());
    EXPECT_TRUE(received == payload);
  });
}

TEST(SocketStream, HalfCloseLetsTheOtherDirectionGoOn) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    client.send_eof();
    client.send_eof();  // idempotent
    std::vector<std::byte> buffer(8);
    EXPECT_EQ(server.receive_some(buffer), 0u);
    EXPECT_THROW(client.send_all(bytes("late")), ClosedResourceError);
    server.send_all(bytes("reply"));
    EXPECT_EQ(receive_exactly(client, 5), "reply");
  });
}

TEST(SocketStream, ConnectToAClosedPortIsConnectionRefused) {
  run([] {
    // Bind a port, then close it: nothing listens there now.
    std::uint16_t port = 0;
    {
      auto listeners = open_tcp_listeners(0, "127.0.0.1");
      port = listeners[0]->local_address().port();
    }
    try {
      (void)open_tcp_stream("127.0.0.1", port);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ECONNREFUSED) << error.what();
      EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(port)),
                std::string::npos)
          << error.what();
      EXPECT_NE(std::string(error.what()).find("ECONNREFUSED"), std::string::npos) << error.what();
    }
  });
}

TEST(SocketStream, ANameThatDoesNotResolveIsAnOSErrorWithTheEaiCode) {
  run([] {
    try {
      (void)open_tcp_stream("no-such-host.invalid", 80);
      ADD_FAILURE() << "resolved an .invalid name";
    } catch (const OSError& error) {
      EXPECT_LT(error.errno_value(), 0) << error.what();
      EXPECT_NE(std::string(error.what()).find("no-such-host.invalid:80"), std::string::npos)
          << error.what();
      EXPECT_NE(std::string(error.what()).find("EAI_"), std::string::npos) << error.what();
    }
  });
}

TEST(SocketStream, APeerResetMidStreamIsBrokenResourceError) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    client.send_all(bytes("some data"));
    EXPECT_EQ(receive_exactly(server, 9), "some data");
    // SO_LINGER with zero timeout: close() sends RST instead of FIN.
    const linger hard{1, 0};
    ASSERT_EQ(::setsockopt(static_cast<int>(server.socket().handle().value), SOL_SOCKET, SO_LINGER,
                           &hard, sizeof hard),
              0);
    server.close();
    std::vector<std::byte> buffer(16);
    EXPECT_THROW(
        {
          // The reset may arrive as a failed receive or as a failed send.
          for (int i = 0; i < 100; ++i) {
            if (client.receive_some(buffer) == 0) client.send_all(bytes("more"));
          }
        },
        BrokenResourceError);
  });
}

TEST(SocketStream, SendingToAPeerThatClosedIsEventuallyBrokenResourceError) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    server.close();
    std::string chunk(65536, 'x');
    EXPECT_THROW(
        {
          for (int i = 0; i < 1000; ++i) client.send_all(bytes(chunk));
        },
        BrokenResourceError);
  });
}

TEST(SocketStream, OperationsOnAClosedStreamAreClosedResourceError) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    client.close();
    client.close();  // idempotent
    std::vector<std::byte> buffer(8);
    EXPECT_THROW(client.receive_some(buffer), ClosedResourceError);
    EXPECT_THROW(client.send_all(bytes("x")), ClosedResourceError);
    EXPECT_THROW(client.send_all({}), ClosedResourceError);
    EXPECT_THROW(client.send_eof(), ClosedResourceError);
    EXPECT_THROW(client.wait_send_all_might_not_block(), ClosedResourceError);
    // The peer sees end of stream.
    EXPECT_EQ(server.receive_some(buffer), 0u);
  });
}

TEST(SocketStream, ClosingWakesABlockedReceiverWithClosedResourceError) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    bool got_closed = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::vector<std::byte> buffer(8);
        try {
          client.receive_some(buffer);
        } catch (const ClosedResourceError&) {
          got_closed = true;
        }
      });
      fakes::wait_all_tasks_blocked();
      client.close();
    });
    EXPECT_TRUE(got_closed);
  });
}

TEST(SocketStream, TwoReceiversOrTwoSendersAreBusyResourceError) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    bool busy = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::vector<std::byte> buffer(8);
        EXPECT_EQ(client.receive_some(buffer), 1u);
      });
      fakes::wait_all_tasks_blocked();
      std::vector<std::byte> buffer(8);
      try {
        client.receive_some(buffer);
      } catch (const BusyResourceError&) {
        busy = true;
      }
      server.send_all(bytes("!"));
    });
    EXPECT_TRUE(busy);

    // Two senders: fill the pipe so the first one blocks.
    busy = false;
    std::string big(4 << 20, 'y');
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          client.send_all(bytes(big));
        } catch (const ClosedResourceError&) {
        }
      });
      fakes::wait_all_tasks_blocked();
      try {
        client.send_all(bytes("z"));
      } catch (const BusyResourceError&) {
        busy = true;
      }
      client.close();
    });
    EXPECT_TRUE(busy);
  });
}

TEST(SocketStream, ReceiveSomeRejectsAnEmptyBuffer) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    EXPECT_THROW(client.receive_some({}), std::invalid_argument);
  });
}

TEST(SocketStream, CancelledReceiveLeavesTheStreamUsable) {
  run([] {
    auto [client, server] = testing::tcp_stream_pair();
    std::vector<std::byte> buffer(8);
    EXPECT_FALSE(move_on_after(10ms, [&] { client.receive_some(buffer); }));
    EXPECT_EQ(lowlevel::current_backend().statistics().tasks_waiting_io, 0u);
    server.send_all(bytes("ok"));
    EXPECT_EQ(receive_exactly(client, 2), "ok");
  });
}

TEST(SocketListener, ClosingWakesABlockedAcceptWithClosedResourceError) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    bool got_closed = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          listeners[0]->accept();
        } catch (const ClosedResourceError&) {
          got_closed = true;
        }
      });
      fakes::wait_all_tasks_blocked();
      listeners[0]->close();
    });
    EXPECT_TRUE(got_closed);
    EXPECT_THROW(listeners[0]->accept(), ClosedResourceError);
  });
}

TEST(SocketListener, BindingAPortInUseNamesTheAddress) {
  run([] {
    auto first = open_tcp_listeners(0, "127.0.0.1");
    const std::uint16_t port = first[0]->local_address().port();
    // SO_REUSEADDR does not allow two listeners on one port.
    try {
      (void)open_tcp_listeners(port, "127.0.0.1");
      ADD_FAILURE() << "bound a port in use";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), EADDRINUSE);
      EXPECT_NE(std::string(error.what()).find("bind to 127.0.0.1:" + std::to_string(port)),
                std::string::npos)
          << error.what();
    }
  });
}

TEST(UnixSocket, EchoOverAUnixListenerAndItsFile) {
  const std::string path = "/tmp/trellis-unix-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  run([&] {
    std::unique_ptr<SocketListener> listener = open_unix_listener(path);
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::unique_ptr<SocketStream> server = listener->accept();
        echo(*server);
      });
      SocketStream client = open_unix_socket(path);
      client.send_all(bytes("over a unix socket"));
      EXPECT_EQ(receive_exactly(client, 18), "over a unix socket");
      client.send_eof();
      std::vector<std::byte> buffer(8);
      EXPECT_EQ(client.receive_some(buffer), 0u);
    });
  });
  ::unlink(path.c_str());
}

TEST(UnixSocket, ConnectingToAMissingPathIsAnOSError) {
  run([] {
    try {
      (void)open_unix_socket("/tmp/trellis-no-such-socket-here");
      ADD_FAILURE();
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ENOENT);
      EXPECT_NE(std::string(error.what()).find("unix:/tmp/trellis-no-such-socket-here"),
                std::string::npos);
    }
  });
}

TEST(UdpSocket, DatagramEchoOverLoopback) {
  run([] {
    UdpSocket server = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
    const SocketAddress server_address = server.local_address();
    UdpSocket client = UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0));
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::vector<std::byte> buffer(2048);
        for (int i = 0; i < 3; ++i) {
          Datagram got = server.receive_from(buffer);
          server.send_to(std::span(buffer).first(got.size), got.from);
        }
      });
      std::vector<std::byte> buffer(2048);
      for (const char* message : {"one", "two", "three"}) {
        client.send_to(bytes(message), server_address);
        Datagram got = client.receive_from(buffer);
        EXPECT_EQ(text(std::span(buffer).first(got.size)), message);
        EXPECT_EQ(got.from, server_address);
      }
    });
    // A blocked receiver is woken by close.
    bool got_closed = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::vector<std::byte> buffer(16);
        try {
          client.receive_from(buffer);
        } catch (const ClosedResourceError&) {
          got_closed = true;
        }
      });
      fakes::wait_all_tasks_blocked();
      client.close();
    });
    EXPECT_TRUE(got_closed);
  });
}

TEST(NetworkLeaks, NoDescriptorOrThreadOutlivesARun) {
  // One warm-up run: the resolver, gtest and the allocator may open things once per process.
  auto exercise = [] {
    open_nursery([](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp(echo, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      const std::uint16_t port = listeners[0]->local_address().port();
      for (int i = 0; i < 5; ++i) {
        SocketStream client = open_tcp_stream("localhost", port);
        client.send_all(bytes("ping"));
        EXPECT_EQ(receive_exactly(client, 4), "ping");
      }
      // A connection refused and a name that does not resolve leave nothing behind either.
      try {
        (void)open_tcp_stream("no-such-host.invalid", port);
      } catch (const OSError&) {
      }
      n.cancel_scope().cancel();
    });
  };
  run(exercise);
  const std::vector<std::string> fds_before = testing::open_fds();
  const std::size_t threads_before = testing::thread_count();
  run(exercise);
  EXPECT_EQ(testing::open_fds(), fds_before);
  EXPECT_EQ(testing::thread_count(), threads_before);
}

}  // namespace
}  // namespace trellis
