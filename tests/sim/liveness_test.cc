// require_progress: a system that recovers after the faults heal passes; one that never does
// (a client that gave up retrying) fails with a report of what every task waits on.
#include "trellis/sim/liveness.h"

#include <gtest/gtest.h>

#include <string>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

// A client pings a server over UDP-free plain state: it "reaches" the server only while the
// server host is up. With give_up, it stops retrying after its first failure.
SimBody pinger(bool give_up) {
  return [give_up](World& world) {
    Host& server = world.add_host("server", "10.0.0.1");
    Host& client = world.add_host("client", "10.0.0.2");
    int pongs = 0;
    server.start([] { sleep_forever(); });
    client.start([&] {
      for (;;) {
        if (server.alive()) {
          ++pongs;
        } else if (give_up) {
          sleep_forever();  // the bug: never tries again
        }
        sleep(10ms);
      }
    });
    world.run([&] {
      sleep(50ms);
      server.crash();
      sleep(100ms);
      server.restart();
      const int before = pongs;
      require_progress(1s, "the client reaching the server again", [&] { return pongs > before; });
    });
  };
}

TEST(Liveness, ARecoveringSystemPasses) {
  const RunResult r = run_simulation(pinger(false), Config{.seed = 1});
  EXPECT_FALSE(r.failed) << r.failure;
}

TEST(Liveness, AStuckSystemFailsWithATaskReport) {
  const RunResult r = run_simulation(pinger(true), Config{.seed = 1});
  ASSERT_TRUE(r.failed);
  EXPECT_NE(r.failure.find("no progress within 1000 ms of virtual time: the client reaching "
                           "the server again did not happen"),
            std::string::npos)
      << r.failure;
  EXPECT_NE(r.failure.find("client main #4 [waiting on sleep]"), std::string::npos) << r.failure;
}

TEST(Liveness, BadArgumentsAreErrors) {
  World world(Config{.seed = 1});
  world.run([] {
    EXPECT_THROW(require_progress(-1ms, "x", [] { return true; }), std::invalid_argument);
    EXPECT_THROW(require_progress(
                     1s, "x", [] { return true; }, 0ms),
                 std::invalid_argument);
    require_progress(0ms, "already true", [] { return true; });
  });
}

}  // namespace
}  // namespace trellis::sim
