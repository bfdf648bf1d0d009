// The networking layer is written once, above the waist: the same serve_tcp, open_tcp_stream
// and SocketStream code that the epoll tests drive runs here on the simulator's network,
// deterministically, in virtual time.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net_test_util.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

void echo(SocketStream& stream) {
  std::vector<std::byte> buffer(1024);
  while (std::size_t n = stream.receive_some(buffer)) stream.send_all(std::span(buffer).first(n));
}

struct Outcome {
  std::vector<std::string> replies;
  bool refused = false;
  std::uint64_t hash = 0;
};

Outcome echo_in_simulation(std::uint64_t seed) {
  sim::World world(sim::Config{.seed = seed});
  sim::Host& server = world.add_host("server", "10.0.0.1");
  sim::Host& client = world.add_host("client", "10.0.0.2");
  server.start([] { serve_tcp(echo, 7); });
  Outcome outcome;
  bool done = false;
  client.start([&] {
    SocketStream stream = open_tcp_stream("server", 7);
    for (int i = 0; i < 3; ++i) {
      const std::string message = "message " + std::to_string(i) + std::string(3000 * i, 'x');
      stream.send_all(testing::bytes(message));
      outcome.replies.push_back(testing::receive_exactly(stream, message.size()));
    }
    stream.send_eof();
    std::vector<std::byte> buffer(8);
    EXPECT_EQ(stream.receive_some(buffer), 0u);
    try {
      (void)open_tcp_stream("server", 8);  // nobody listens there
    } catch (const OSError& error) {
      outcome.refused = error.errno_value() == ECONNREFUSED;
    }
    done = true;
  });
  world.run([&] {
    while (!done) sleep(10ms);
  });
  outcome.hash = world.trace().hash();
  return outcome;
}

TEST(SimSockets, ServeTcpAndOpenTcpStreamRunUnchangedOnTheSimulatedNetwork) {
  const Outcome a = echo_in_simulation(7);
  ASSERT_EQ(a.replies.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.replies[static_cast<std::size_t>(i)],
              "message " + std::to_string(i) + std::string(3000 * i, 'x'));
  }
  EXPECT_TRUE(a.refused);
  // Deterministic: the same seed gives the same run.
  EXPECT_EQ(echo_in_simulation(7).hash, a.hash);
}

}  // namespace
}  // namespace trellis
