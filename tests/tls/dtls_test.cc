// DtlsEndpoint / DtlsChannel (Trio's test_dtls.py semantics that apply): an echo over real
// loopback UDP; in a World, a handshake and an echo that complete and deliver correctly
// under 20% loss with duplication and reordering (retransmission on virtual time), one
// seed giving one run; a small ciphertext MTU (the handshake fragments to fit, a datagram
// that cannot fit is a clear error); a certificate for another address is refused.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dtls_world.h"
#include "trellis/fakes/tls.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

using dtls_testing::bytes;
using dtls_testing::echo;
using dtls_testing::text;

// Bounds a lossy run: 40 requests, each retried every virtual second until answered.
constexpr Duration kLossyRunTimeMax = std::chrono::minutes(10);

struct DtlsPki {
  fakes::TestCertificateAuthority ca;
  SslContext server = SslContext::dtls_server();
  SslContext client = SslContext::dtls_client();
  explicit DtlsPki(const std::string& server_address) {
    ca.issue_server_certificate({server_address}).configure(server);
    ca.configure_trust(client);
  }
};

TEST(Dtls, EchoOverLoopback) {
  DtlsPki pki("127.0.0.1");
  run([&] {
    DtlsEndpoint server(UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0)));
    const SocketAddress address = server.socket().local_address();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { server.serve(pki.server, echo); });
      DtlsEndpoint client(UdpSocket(AF_INET));
      DtlsChannel channel = client.connect(address, pki.client);
      fail_after(30s, [&] {
        for (int i = 0; i < 20; ++i) {
          const std::string message = "datagram " + std::to_string(i);
          channel.send(bytes(message));
          EXPECT_EQ(text(channel.receive()), message);
        }
      });
      EXPECT_EQ(server.statistics().hello_verify_requests_sent, 1u);  // the cookie exchange
      EXPECT_EQ(server.statistics().channels_accepted, 1u);
      EXPECT_EQ(channel.statistics().handshake_retransmissions, 0u);  // loopback loses nothing
      channel.close();
      nursery.cancel_scope().cancel();
    });
  });
}

TEST(Dtls, SmallMtuFragmentsTheHandshakeAndRefusesOversizedDatagrams) {
  DtlsPki pki("127.0.0.1");
  run([&] {
    DtlsEndpoint server(UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0)));
    const SocketAddress address = server.socket().local_address();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { server.serve(pki.server, echo); });
      DtlsEndpoint client(UdpSocket(AF_INET));
      DtlsChannel channel = client.connect(address, pki.client);
      EXPECT_THROW(channel.set_ciphertext_mtu(100), std::invalid_argument);
      channel.set_ciphertext_mtu(300);
      EXPECT_EQ(channel.ciphertext_mtu(), 300u);
      fail_after(30s, [&] {
        channel.send(bytes("small"));
        EXPECT_EQ(text(channel.receive()), "small");
        EXPECT_THROW(channel.send(std::vector<std::byte>(1000)), std::invalid_argument);
        channel.send(bytes("still works"));
        EXPECT_EQ(text(channel.receive()), "still works");
      });
      nursery.cancel_scope().cancel();
    });
  });
}

TEST(Dtls, ACertificateForAnotherAddressIsRefused) {
  DtlsPki pki("10.9.9.9");
  run([&] {
    DtlsEndpoint server(UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0)));
    const SocketAddress address = server.socket().local_address();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { server.serve(pki.server, echo); });
      DtlsEndpoint client(UdpSocket(AF_INET));
      DtlsChannel channel = client.connect(address, pki.client);
      try {
        fail_after(30s, [&] { channel.do_handshake(); });
        ADD_FAILURE() << "the handshake succeeded";
      } catch (const SslError& error) {
        EXPECT_NE(error.reason().find("IP address mismatch"), std::string::npos) << error.reason();
      }
      EXPECT_THROW(channel.send(bytes("x")), BrokenResourceError);
      nursery.cancel_scope().cancel();
    });
  });
}

struct LossyResult {
  std::size_t handshake_retransmissions = 0;
  int delivered = 0;
  int wrong = 0;
  int retries = 0;
  std::uint64_t trace_hash = 0;
};

// A client on a lossy, duplicating, reordering network sends numbered requests, retrying
// each (1 s on the virtual clock) until its echo comes back.
LossyResult lossy_echo(std::uint64_t seed) {
  LossyResult result;
  sim::Config config{.seed = seed};
  config.network.datagram_loss_ppm = 200'000;
  config.network.datagram_duplicate_ppm = 200'000;
  config.network.datagram_reorder_ppm = 200'000;
  dtls_testing::DtlsWorld w(config);
  w.start_echo_server();
  const bool done = w.run_client(
      [&] {
        DtlsEndpoint endpoint(UdpSocket(AF_INET));
        DtlsChannel channel = endpoint.connect(w.server_address(), w.client_context());
        channel.do_handshake();
        result.handshake_retransmissions = channel.statistics().handshake_retransmissions;
        for (int i = 0; i < 40; ++i) {
          const std::string message = "request " + std::to_string(i);
          for (bool answered = false; !answered;) {
            channel.send(bytes(message));
            move_on_after(1s, [&] {
              // Echoes of earlier requests (duplicates, late ones) are skipped.
              for (;;) {
                const std::string reply = text(channel.receive());
                if (reply == message) break;
                if (reply.rfind("request ", 0) != 0) ++result.wrong;
              }
              answered = true;
            });
            if (!answered) ++result.retries;
          }
          ++result.delivered;
        }
        channel.close();
      },
      kLossyRunTimeMax);
  EXPECT_TRUE(done) << "seed " << seed << ": the client did not finish in virtual time";
  result.trace_hash = w.world().trace().hash();
  return result;
}

TEST(DtlsSim, CompletesAndDeliversUnderLossDuplicationAndReordering) {
  std::size_t handshake_retransmissions = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const LossyResult result = lossy_echo(seed);
    EXPECT_EQ(result.delivered, 40) << "seed " << seed;
    EXPECT_EQ(result.wrong, 0) << "seed " << seed;
    EXPECT_GT(result.retries, 0) << "seed " << seed << ": no loss was felt";
    handshake_retransmissions += result.handshake_retransmissions;
  }
  // Some seeds lost a handshake flight: the handshake got through by retransmitting.
  EXPECT_GT(handshake_retransmissions, 0u);
}

TEST(DtlsSim, OneSeedIsOneRun) {
  const LossyResult first = lossy_echo(5);
  const LossyResult second = lossy_echo(5);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(first.retries, second.retries);
}

}  // namespace
}  // namespace trellis
