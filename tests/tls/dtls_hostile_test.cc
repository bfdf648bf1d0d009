// DtlsEndpoint under hostile datagrams, in a World: a hostile host sends random bytes and
// mutations of a real ClientHello to the server endpoint (before and after a legitimate
// client's handshake: the stateless listen path), and the client's own address sends more
// (the established channel's record path); the legitimate client still handshakes,
// exchanges 50 datagrams with exact contents within a virtual-time deadline, and the server
// still accepts a second client afterwards. A RapidCheck property, plus regression tests for
// what it found (an empty datagram broke a channel; an epoch-0 datagram started a ping-pong).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dtls_world.h"
#include "trellis/fakes/tls.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

enum class Target : int { kServerBeforeHandshake, kServerAfterHandshake, kFromClientAddress };

// One hostile datagram: random bytes, or the captured ClientHello with some bytes changed
// and maybe cut short.
struct Hostile {
  Target target = Target::kServerBeforeHandshake;
  bool mutate_client_hello = false;
  std::vector<std::uint8_t> bytes;                         // random bytes (or xor values)
  std::vector<std::size_t> positions;                      // where the xor values go
  std::size_t truncate_to = static_cast<std::size_t>(-1);  // keep at most this many bytes
};

void showValue(const Hostile& hostile, std::ostream& os) {
  os << "{target " << static_cast<int>(hostile.target)
     << (hostile.mutate_client_hello ? ", ClientHello xor" : ", bytes") << " [";
  for (std::size_t i = 0; i < hostile.bytes.size(); ++i) {
    os << (i == 0 ? "" : " ") << static_cast<int>(hostile.bytes[i]);
    if (hostile.mutate_client_hello) os << "@" << hostile.positions[i];
  }
  os << "], truncate_to " << hostile.truncate_to << "}";
}

struct Outcome {
  int delivered = 0;
  int wrong = 0;
  bool second_client_served = false;
  std::string error;
  std::size_t flights_resent_by_client = 0;
};

using dtls_testing::bytes;
using dtls_testing::DtlsWorld;
using dtls_testing::text;

std::vector<std::byte> materialize(const Hostile& hostile, const std::vector<std::byte>& hello) {
  std::vector<std::byte> datagram;
  if (!hostile.mutate_client_hello) {
    for (const std::uint8_t b : hostile.bytes) datagram.push_back(std::byte{b});
    if (datagram.size() > hostile.truncate_to) datagram.resize(hostile.truncate_to);
    return datagram;
  }
  datagram = hello;
  for (std::size_t i = 0; i < hostile.positions.size() && !datagram.empty(); ++i) {
    datagram[hostile.positions[i] % datagram.size()] ^=
        std::byte{i < hostile.bytes.size() ? hostile.bytes[i] : std::uint8_t{0xff}};
  }
  if (datagram.size() > hostile.truncate_to) datagram.resize(hostile.truncate_to);
  return datagram;
}

void send_all(UdpSocket& socket, const std::vector<Hostile>& attack, Target target,
              const std::vector<std::byte>& hello, const SocketAddress& to) {
  for (const Hostile& hostile : attack) {
    if (hostile.target == target) socket.send_to(materialize(hostile, hello), to);
  }
}

// The legitimate client: handshake, then `count` echoes in lockstep, interleaving the
// attack from its own address; then a second client on a fresh socket.
void legitimate_client(Outcome& outcome, SslContext& client_ctx, const std::vector<Hostile>& attack,
                       const std::vector<std::byte>& hello, Event& handshaken, int count) {
  const SocketAddress server = DtlsWorld::server_address();
  DtlsEndpoint endpoint(UdpSocket(AF_INET));
  DtlsChannel channel = endpoint.connect(server, client_ctx);
  channel.do_handshake();
  handshaken.set();
  for (int i = 0; i < count; ++i) {
    if (i == count / 2) {
      send_all(endpoint.socket(), attack, Target::kFromClientAddress, hello, server);
    }
    const std::string message = "datagram " + std::to_string(i);
    channel.send(bytes(message));
    if (text(channel.receive()) == message) {
      ++outcome.delivered;
    } else {
      ++outcome.wrong;
    }
  }
  outcome.flights_resent_by_client = channel.statistics().flights_resent_to_handshaking_peer;
  channel.close();
  DtlsEndpoint second(UdpSocket(AF_INET));
  DtlsChannel other = second.connect(server, client_ctx);
  other.send(bytes("still serving"));
  outcome.second_client_served = text(other.receive()) == "still serving";
  other.close();
}

Outcome run_attack(std::uint64_t seed, const std::vector<Hostile>& attack, int count) {
  DtlsWorld w(sim::Config{.seed = seed});
  w.start_echo_server();
  Outcome outcome;
  Event before_sent;
  Event handshaken;
  std::vector<std::byte> hello;
  w.attacker().start([&] {
    const SocketAddress to = DtlsWorld::server_address();
    hello = dtls_testing::capture_client_hello(w.client_context(),
                                               *SocketAddress::parse(DtlsWorld::kAttackerIp, 9999));
    UdpSocket socket = UdpSocket::bind(*SocketAddress::parse(DtlsWorld::kAttackerIp, 0));
    send_all(socket, attack, Target::kServerBeforeHandshake, hello, to);
    before_sent.set();
    handshaken.wait();
    send_all(socket, attack, Target::kServerAfterHandshake, hello, to);
  });
  const bool done = w.run_client(
      [&] {
        try {
          fail_after(120s, [&] {
            before_sent.wait();
            legitimate_client(outcome, w.client_context(), attack, hello, handshaken, count);
          });
        } catch (const std::exception& error) {
          outcome.error = error.what();
        }
      },
      200s);
  if (!done) outcome.error = "the client did not finish within 200 s of virtual time";
  return outcome;
}

rc::Gen<Hostile> hostile_datagram() {
  return rc::gen::exec([] {
    Hostile hostile;
    hostile.target = static_cast<Target>(*rc::gen::inRange(0, 3));
    hostile.mutate_client_hello = *rc::gen::arbitrary<bool>();
    hostile.bytes = *rc::gen::container<std::vector<std::uint8_t>>(
        *rc::gen::inRange<std::size_t>(0, 80), rc::gen::arbitrary<std::uint8_t>());
    hostile.positions = *rc::gen::container<std::vector<std::size_t>>(
        hostile.bytes.size(), rc::gen::inRange<std::size_t>(0, 400));
    hostile.truncate_to = *rc::gen::element<std::size_t>(0, 3, 13, 20, 100, 1000, 100000);
    return hostile;
  });
}

void expect_served(const Outcome& outcome, int count) {
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.delivered, count);
  EXPECT_EQ(outcome.wrong, 0);
  EXPECT_TRUE(outcome.second_client_served);
}

void legitimate_exchange_survives_hostile_datagrams() {
  const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
  const auto attack = *rc::gen::container<std::vector<Hostile>>(
      *rc::gen::inRange<std::size_t>(0, 24), hostile_datagram());
  const Outcome outcome = run_attack(seed, attack, 50);
  RC_ASSERT(outcome.error == "");
  RC_ASSERT(outcome.delivered == 50);
  RC_ASSERT(outcome.wrong == 0);
  RC_ASSERT(outcome.second_client_served);
  // A full handshake: the server's flight ended it, so the client never resends one.
  RC_ASSERT(outcome.flights_resent_by_client == 0u);
}

// RC_GTEST_PROP's check with at most 40 cases (RC_PARAMS may ask for fewer, and reproduce
// works as usual): each case is a World with two handshakes, about 70 ms under ASan.
TEST(DtlsHostile, LegitimateExchangeSurvivesHostileDatagrams) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = std::min(params.maxSuccess, 40);
  rc::detail::TestMetadata metadata;
  metadata.id = "DtlsHostile/LegitimateExchangeSurvivesHostileDatagrams";
  metadata.description = "LegitimateExchangeSurvivesHostileDatagrams";
  const rc::detail::TestResult result = rc::detail::checkProperty(
      rc::detail::toProperty(legitimate_exchange_survives_hostile_datagrams), metadata, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    FAIL() << message.str();
  }
}

// An unmodified copy of a ClientHello sent from the client's address once the channel is
// established makes the server resend its last flight; the client must not answer that
// with its own flight, or one spoofed datagram starts an endless exchange of flights.
TEST(DtlsHostile, AnEpochZeroDatagramFromThePeerDoesNotStartAPingPong) {
  Hostile hello_copy;
  hello_copy.target = Target::kFromClientAddress;
  hello_copy.mutate_client_hello = true;
  const Outcome outcome = run_attack(7, {hello_copy}, 50);
  expect_served(outcome, 50);
  EXPECT_LE(outcome.flights_resent_by_client, 1u);
}

// An empty UDP datagram from the peer's address once read as the end of the stream to
// OpenSSL: the server's channel broke and the client waited for its echo forever.
TEST(DtlsHostile, AnEmptyDatagramFromThePeerDoesNotBreakTheChannel) {
  Hostile empty;
  empty.target = Target::kFromClientAddress;
  Hostile empty_to_listener;  // and the stateless listen path drops it
  const Outcome outcome = run_attack(3, {empty, empty_to_listener}, 50);
  expect_served(outcome, 50);
}

}  // namespace
}  // namespace trellis
