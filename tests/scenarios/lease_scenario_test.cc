// The lease scenario: the server's grant rules, the checker, the planted bug (a node trusting
// its clock for the full lease) found within 1,000 seeds and replayed, 10,000 clean seeds
// without it, and the same server and nodes on the real epoll backend with a leader failover —
// in this process, and against the `trellis serve lease` program stopped with SIGINT.
#include "trellis/scenarios/lease/lease_scenario.h"

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "scenario_sweep.h"
#include "trellis/core/run.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/scenarios/lease/lease_checker.h"
#include "trellis/scenarios/lease/lease_node.h"
#include "trellis/scenarios/lease/lease_server.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

#ifndef TRELLIS_CLI_PATH
#error "TRELLIS_CLI_PATH names the trellis tool (set by tests/CMakeLists.txt)"
#endif

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using namespace lease;

Time at_ms(int ms) {
  return Time(std::chrono::milliseconds(ms));
}

TEST(LeaseServer, GrantsOneLeaseAtATimeAfterItsGracePeriod) {
  Time now = at_ms(1000);
  sim::run_unit(
      [&] {
        LeaseServer server({.lease = 100ms, .clock = [&] { return now; }});
        EXPECT_EQ(server.handle("A n1"), "W");  // grace: an earlier incarnation's lease
        now = at_ms(1100);
        EXPECT_EQ(server.handle("A n1"), "G");
        now = at_ms(1150);
        EXPECT_EQ(server.handle("A n2"), "H n1");
        EXPECT_EQ(server.handle("A n1"), "G");  // renewed until 1250
        now = at_ms(1249);
        EXPECT_EQ(server.handle("A n2"), "H n1");
        now = at_ms(1250);
        EXPECT_EQ(server.handle("A n2"), "G");
        EXPECT_EQ(server.handle("A n1"), "H n2");
        for (const char* bad : {"", "A", "A ", "X n1", "A a b", "A n\x01"}) {
          EXPECT_EQ(server.handle(bad).substr(0, 2), "E ") << bad;
        }
        EXPECT_EQ(server.statistics().grants, 3u);
      },
      1);
}

TEST(LeaseNode, TrustsALeaseShortenedForDriftAndRejectsBadOptions) {
  LeaseNode node({.server = "s", .name = "n", .lease = 150ms, .clock_drift_ppm_max = 50'000});
  // 150 ms * 0.95 / 1.05
  EXPECT_EQ(node.trusted_lease(), Duration(135'714'285));
  EXPECT_THROW(LeaseNode({.server = "", .name = "n"}), std::invalid_argument);
  EXPECT_THROW(LeaseNode({.server = "s", .name = "a b"}), std::invalid_argument);
  EXPECT_THROW(LeaseNode({.server = "s", .name = "n", .clock_drift_ppm_max = 1'000'000}),
               std::invalid_argument);
  EXPECT_THROW(LeaseNode({.server = "s", .name = "n", .lease = 40ms}), std::invalid_argument);
}

TEST(LeaseChecker, FindsTwoLeadersAtOnceOnly) {
  LeaseChecker ok;
  ok.granted("a", at_ms(0), at_ms(100));
  ok.granted("a", at_ms(50), at_ms(150));   // a renewal
  ok.granted("b", at_ms(150), at_ms(250));  // touching is not overlapping
  ok.granted("c", at_ms(260), at_ms(300));
  EXPECT_FALSE(ok.overlap());
  LeaseChecker bad = ok;
  bad.granted("d", at_ms(299), at_ms(400));
  ASSERT_TRUE(bad.overlap());
  EXPECT_NE(bad.overlap()->find("c is leader until 300.0 ms but d became leader at 299.0 ms"),
            std::string::npos)
      << *bad.overlap();
  LeaseChecker nested;
  nested.granted("a", at_ms(0), at_ms(500));
  nested.granted("b", at_ms(10), at_ms(20));
  EXPECT_TRUE(nested.overlap());
  nested.stopped("a", at_ms(5));  // a crashed before b got the lease
  EXPECT_FALSE(nested.overlap());
}

TEST(LeaseScenario, IsRegisteredWithItsOption) {
  const Scenario& lease = find_scenario("lease");
  EXPECT_NO_THROW(check_options(lease, {{"planted_bug", "on"}}));
  EXPECT_THROW(check_options(lease, {{"planted", "on"}}), std::invalid_argument);
}

TEST(LeaseScenario, PlantedBugIsFoundWithin1000SeedsAndReplays) {
  const Scenario& lease = find_scenario("lease");
  const Options bug = {{"planted_bug", "on"}};
  const std::optional<sim::RunResult> failing = first_failing_seed(lease, bug);
  ASSERT_TRUE(failing) << "no failing seed in 1..1000";
  EXPECT_NE(failing->failure.find("two leaders"), std::string::npos) << failing->failure;
  // The failing seed and its replay file reproduce the same failure, event for event.
  expect_failure_reproduces(lease, bug, *failing);
  // Without the bug, the same seed passes.
  EXPECT_FALSE(run_seed(lease, {}, failing->config.seed).failed);
}

// 10,000 seeds in eight shards of about 10-15 s each (ctest runs them in parallel); sanitizer
// builds run 125 each.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kSeedsPerShard = 125;
#else
constexpr std::uint64_t kSeedsPerShard = 1250;
#endif

class LeaseScenarioClean : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(LeaseScenarioClean, NoFailureWithoutTheBug) {
  expect_seeds_pass(find_scenario("lease"), {}, 1 + GetParam() * kSeedsPerShard, kSeedsPerShard);
}

INSTANTIATE_TEST_SUITE_P(Shards, LeaseScenarioClean, ::testing::Range<std::uint64_t>(0, 8));

// Real mode: the same server and nodes on the epoll backend over loopback, on the real clock.
// A node becomes leader; it is stopped (as if it crashed); another takes over once the lease
// ran out; never two leaders at once.
TEST(LeaseReal, OneLeaderAtATimeAndAFailoverOnLoopback) {
  constexpr int kNodes = 3;
  LeaseChecker checker;
  std::string first_leader;
  std::string second_leader;
  trellis::run([&] {
    LeaseServer server({.lease = 100ms});
    open_nursery([&](Nursery& nursery) {
      const auto listeners = nursery.start<std::vector<SocketListener*>>(
          [&](TaskStatus<std::vector<SocketListener*>>& status) {
            server.serve(0, "127.0.0.1", &status);
          });
      const std::uint16_t port = listeners.at(0)->local_address().port();
      std::vector<std::unique_ptr<LeaseNode>> nodes;
      std::vector<std::unique_ptr<CancelScope>> scopes;
      for (int n = 1; n <= kNodes; ++n) {
        nodes.push_back(
            std::make_unique<LeaseNode>(LeaseNode::Options{.server = "127.0.0.1",
                                                           .port = port,
                                                           .name = "node" + std::to_string(n),
                                                           .lease = 100ms}));
        scopes.push_back(std::make_unique<CancelScope>());
      }
      const auto leader = [&]() -> int {
        for (int n = 0; n < kNodes; ++n) {
          if (!scopes[n]->cancel_called() && nodes[n]->is_leader()) return n;
        }
        return -1;
      };
      fail_after(10s, [&] {
        open_nursery([&](Nursery& running) {
          for (int n = 0; n < kNodes; ++n) {
            running.start_soon([&, n] {
              const std::string name = "node" + std::to_string(n + 1);
              scopes[n]->run([&] {
                nodes[n]->run([&](Time expiry) { checker.granted(name, current_time(), expiry); });
              });
            });
          }
          while (leader() < 0) sleep(1ms);
          const int first = leader();
          first_leader = "node" + std::to_string(first + 1);
          sleep(200ms);  // it renews meanwhile
          scopes[first]->cancel();
          checker.stopped(first_leader, current_time());
          while (leader() < 0) sleep(1ms);
          second_leader = "node" + std::to_string(leader() + 1);
          sleep(100ms);
          running.cancel_scope().cancel();
        });
      });
      nursery.cancel_scope().cancel();
    });
  });
  EXPECT_FALSE(checker.overlap()) << *checker.overlap();
  EXPECT_FALSE(first_leader.empty());
  EXPECT_NE(second_leader, first_leader);
  EXPECT_GE(checker.grants(), 3u);
}

// The real program: `trellis serve lease` in a child process, two nodes competing through it
// (one leader at a time, on the real clock), then SIGINT: it says so and exits 0.
TEST(LeaseServe, ServerProcessGrantsOneLeaseAtATimeAndStopsOnSigint) {
  LeaseChecker checker;
  std::string banner;
  std::string rest;
  int exit_status = -1;
  std::uint64_t grants_seen = 0;
  trellis::run([&] {
    Process server = open_process({TRELLIS_CLI_PATH, "serve", "lease", "--options=lease_ms=100"},
                                  {.stdout_mode = Stdio::kPipe});
    kv::LineReader output(*server.stdout_stream());
    fail_after(30s, [&] { banner = output.read_line().value_or(""); });
    const std::string marker = "serving lease on ";
    ASSERT_EQ(banner.rfind(marker, 0), 0u) << banner;
    const std::string address =
        banner.substr(marker.size(), banner.find(' ', marker.size()) - marker.size());
    const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    std::vector<std::unique_ptr<LeaseNode>> nodes;
    for (const char* name : {"n1", "n2"}) {
      nodes.push_back(std::make_unique<LeaseNode>(
          LeaseNode::Options{.server = "127.0.0.1", .port = port, .name = name, .lease = 100ms}));
    }
    fail_after(30s, [&] {
      open_nursery([&](Nursery& running) {
        for (std::size_t n = 0; n < nodes.size(); ++n) {
          running.start_soon([&, n] {
            const std::string name = "n" + std::to_string(n + 1);
            nodes[n]->run([&](Time expiry) { checker.granted(name, current_time(), expiry); });
          });
        }
        // The server's start-up grace (one lease), then a leader that keeps renewing.
        while (checker.grants() < 5) sleep(1ms);
        running.cancel_scope().cancel();
      });
    });
    grants_seen = checker.grants();
    server.send_signal(SIGINT);
    fail_after(30s, [&] {
      while (std::optional<std::string> line = output.read_line()) rest += *line + "\n";
      exit_status = server.wait();
    });
  });
  EXPECT_GE(grants_seen, 5u);
  EXPECT_FALSE(checker.overlap()) << *checker.overlap();
  EXPECT_EQ(exit_status, 0);
  EXPECT_NE(rest.find("stopped by SIGINT"), std::string::npos) << rest;
}

}  // namespace
}  // namespace trellis::scenarios
