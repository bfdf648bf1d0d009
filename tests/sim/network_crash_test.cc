// A TCP sender's crash and the bytes it already sent (network_config.h's fault model): what
// is on the wire still reaches the peer; only what waits in the sender's buffer (held back
// by a partition) is lost with the host.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kPort = 7;

std::span<const std::byte> bytes(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// What the server host read from its one connection, and how the reading ended.
struct Received {
  std::string data;
  bool end_of_stream = false;
};

// A server on 10.0.0.1 that reads its one connection until end of stream (or until the run
// ends); a client on 10.0.0.2 that connects, waits for `go`, sends message, optionally
// closes, and crashes its own host in the same step (no checkpoint in between: nothing has
// landed yet). The driver decides what happens to the link meanwhile.
class CrashingSender {
 public:
  CrashingSender(std::uint64_t seed, std::string message, bool close_first)
      : world_(Config{.seed = seed}),
        server_(world_.add_host("server", "10.0.0.1")),
        client_(world_.add_host("client", "10.0.0.2")),
        message_(std::move(message)) {
    server_.start([this] {
      std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(kPort, "0.0.0.0");
      std::unique_ptr<SocketStream> stream = listeners.at(0)->accept();
      std::vector<std::byte> buffer(4096);
      while (std::size_t n = stream->receive_some(buffer)) {
        received_.data.append(reinterpret_cast<const char*>(buffer.data()), n);
      }
      received_.end_of_stream = true;
    });
    client_.start([this, close_first] {
      SocketStream stream = open_tcp_stream("10.0.0.1", kPort);
      connected_ = true;
      while (!go_) sleep(1ms);
      stream.send_all(bytes(message_));  // fits in the window: returns without waiting
      if (close_first) stream.close();   // the FIN follows the data
      client_.crash();
      sleep_forever();  // cancelled by the crash
    });
  }

  World& world() { return world_; }
  Host& server() { return server_; }
  Host& client() { return client_; }
  bool connected() const { return connected_; }
  void go() { go_ = true; }
  const Received& received() const { return received_; }

 private:
  World world_;
  Host& server_;
  Host& client_;
  std::string message_;
  bool connected_ = false;
  bool go_ = false;
  Received received_;
};

std::string message_of(std::size_t size) {
  std::string out;
  for (std::size_t i = 0; out.size() < size; ++i) out += "byte " + std::to_string(i) + ";";
  out.resize(size);
  return out;
}

// The sender crashes right after send(): its segment is on the wire and lands. (It used to
// be dropped with the host.) The connection then just goes quiet: no FIN, no reset.
TEST(SimNetworkCrash, BytesOnTheWireLandAfterTheSenderCrashes) {
  const std::string message = message_of(3000);
  CrashingSender run(31, message, /*close_first=*/false);
  run.world().run([&] {
    while (!run.connected()) sleep(1ms);
    run.go();
    sleep(5s);
    EXPECT_FALSE(run.client().alive());
  });
  EXPECT_EQ(run.received().data.size(), message.size());
  EXPECT_EQ(run.received().data, message);
  EXPECT_FALSE(run.received().end_of_stream);
}

// A close() before the crash had put the FIN on the wire too: the peer reads the end of
// the stream after the data.
TEST(SimNetworkCrash, FinOnTheWireLandsAfterTheSenderCrashes) {
  const std::string message = message_of(100);
  CrashingSender run(32, message, /*close_first=*/true);
  run.world().run([&] {
    while (!run.connected()) sleep(1ms);
    run.go();
    sleep(5s);
  });
  EXPECT_EQ(run.received().data, message);
  EXPECT_TRUE(run.received().end_of_stream);
}

// Sent while the link is partitioned: the bytes wait in the sender's buffer for a
// retransmission that never comes. They are lost with the host, even once the link heals.
TEST(SimNetworkCrash, BytesHeldBackByAPartitionAreLostWithTheSender) {
  CrashingSender run(33, message_of(500), /*close_first=*/false);
  run.world().run([&] {
    while (!run.connected()) sleep(1ms);
    run.world().partition(run.server(), run.client());
    run.go();
    sleep(2s);
    run.world().heal_all();
    sleep(5s);
  });
  EXPECT_EQ(run.received().data, "");
  EXPECT_FALSE(run.received().end_of_stream);
}

// A partition that starts after the send catches the segment on its way: it is lost too
// (nobody is left to retransmit it), and nothing after it lands out of order.
TEST(SimNetworkCrash, BytesOnTheWireAreLostIfTheLinkFailsBeforeTheyLand) {
  CrashingSender run(34, message_of(500), /*close_first=*/true);
  run.world().run([&] {
    while (!run.connected()) sleep(1ms);
    run.go();
    while (run.client().alive()) sleep(1us);  // the send and the crash, not yet the landing
    run.world().partition(run.server(), run.client());
    sleep(2s);
    run.world().heal_all();
    sleep(5s);
  });
  EXPECT_EQ(run.received().data, "");
  EXPECT_FALSE(run.received().end_of_stream);
}

}  // namespace
}  // namespace trellis::sim
