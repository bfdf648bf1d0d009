// The replicated key-value store: its wire format, a replica's durability across crashes,
// the quorum client against live and crashed replicas, and the flagship sweep — the planted
// bug (reads without write-back) found within 1,000 seeds, nothing found in 10,000 without
// it.
#include "trellis/scenarios/kv/kv_scenario.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "../sim/child_process.h"
#include "scenario_sweep.h"
#include "trellis/scenarios/kv/kv_client.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using namespace kv;

TEST(KvProtocol, RequestsAndVersionsRoundTrip) {
  const Versioned v{{42, 7}, "hello"};
  const Request store = parse_request(encode_store("k", v));
  EXPECT_EQ(store.kind, Request::Kind::kStore);
  EXPECT_EQ(store.key, "k");
  EXPECT_EQ(store.versioned, v);
  const Request query = parse_request(encode_query("k"));
  EXPECT_EQ(query.kind, Request::Kind::kQuery);
  EXPECT_EQ(parse_versioned(encode_versioned(v)), v);
  EXPECT_EQ(parse_versioned(encode_versioned(Versioned{})), Versioned{});  // empty value
}

RC_GTEST_PROP(KvProtocol, AnyValidVersionRoundTrips, ()) {
  const auto counter = *rc::gen::arbitrary<std::uint64_t>();
  const auto writer = *rc::gen::arbitrary<std::uint32_t>();
  const auto value = *rc::gen::container<std::string>(
      *rc::gen::inRange<std::size_t>(0, kValueBytesMax + 1), rc::gen::inRange('!', '~'));
  const Versioned v{{counter, writer}, value};
  RC_ASSERT(parse_versioned(encode_versioned(v)) == v);
  RC_ASSERT(parse_request(encode_store("key", v)).versioned == v);
}

TEST(KvProtocol, MalformedLinesAreProtocolErrors) {
  for (const char* line : {"", "Q", "X k", "S k 1 2 nope", "S k x 2 =v", "S k 1 -2 =v", "S k 1 2",
                           "V 1 2", "V 1 2 =a b", "E oops", "S k 99999999999999999999 1 =v"}) {
    EXPECT_THROW(
        {
          if (line[0] == 'V' || line[0] == 'E') {
            parse_versioned(line);
          } else {
            parse_request(line);
          }
        },
        ProtocolError)
        << line;
  }
  EXPECT_THROW(check_key(""), std::invalid_argument);
  EXPECT_THROW(check_key("a b"), std::invalid_argument);
  EXPECT_THROW(check_value("a\nb"), std::invalid_argument);
  EXPECT_THROW(check_value(std::string(kValueBytesMax + 1, 'v')), std::invalid_argument);
  EXPECT_THROW(KvClient({.replicas = {}}), std::invalid_argument);
  EXPECT_THROW(KvClient({.replicas = {"r"}, .client_id = 0}), std::invalid_argument);
  for (const char* bad : {"h:", ":80", "h:0", "h:70000", "h:8x", "[::1:80", "[]:80"}) {
    EXPECT_THROW(KvClient({.replicas = {bad}}), std::invalid_argument) << bad;
  }
  EXPECT_NO_THROW(KvClient({.replicas = {"h:80", "[::1]:81", "plain", "::1"}}));
}

TEST(KvReplica, KeepsOnlyNewerVersionsAndRecoversThemAfterACrash) {
  sim::World world(sim::Config{.seed = 3});
  sim::Host& host = world.add_host("replica", "10.0.0.1");
  int incarnations = 0;
  host.start([&] {
    KvReplica replica = KvReplica::open({.directory = "/kv"});
    if (++incarnations == 1) {
      EXPECT_EQ(replica.recovered_stores(), 0u);
      EXPECT_EQ(replica.handle(parse_request(encode_store("k", {{2, 1}, "two"}))), "A");
      EXPECT_EQ(replica.handle(parse_request(encode_store("k", {{1, 9}, "one"}))), "A");
      EXPECT_EQ(replica.get("k"), (Versioned{{2, 1}, "two"}));
      EXPECT_EQ(replica.handle(parse_request(encode_query("k"))), "V 2 1 =two");
      EXPECT_EQ(replica.handle(parse_request(encode_query("other"))), "V 0 0 =");
    } else {
      // Both acknowledged stores were durable; only the newer one counts.
      EXPECT_EQ(replica.recovered_stores(), 1u);
      EXPECT_EQ(replica.get("k"), (Versioned{{2, 1}, "two"}));
    }
    sleep_forever();
  });
  world.run([&] {
    sleep(10ms);
    host.crash();
    host.restart();
    sleep(10ms);
  });
  EXPECT_EQ(incarnations, 2);
}

// A disk that fails under a store: serve() stops every connection and throws the disk's
// OSError itself (no ExceptionGroup), the store is not acknowledged, and the replica opened
// again once the disk works has every acknowledged store.
TEST(KvReplica, ADiskErrorStopsServingWithTheOSErrorAndReopeningGoesOn) {
  sim::Config config{.seed = 4};
  config.fault_plan.faults.push_back({.kind = sim::PlannedFault::Kind::kDiskErrors,
                                      .at = 500ms,
                                      .a = 0,
                                      .b = static_cast<std::uint32_t>(sim::DiskErrorClass::kSyncs),
                                      .duration = 500ms});
  sim::World world(config);
  sim::Host& replica_host = world.add_host("replica", "10.0.0.1");
  int disk_errors = 0;
  std::size_t recovered_after = 0;
  replica_host.start([&] {
    try {
      KvReplica::open({.directory = "/kv"}).serve(7000);
    } catch (const OSError& e) {
      EXPECT_EQ(e.code().value(), EIO) << e.what();
      ++disk_errors;
    }
    sleep(600ms);  // the disk works again (the window ends at 1 s)
    KvReplica again = KvReplica::open({.directory = "/kv", .after_disk_error = true});
    recovered_after = again.recovered_stores();
    // "one" was acknowledged; "two" may or may not be there (its write reached the page
    // cache, its fsync failed).
    const std::string value = again.get("k").value;
    EXPECT_TRUE(value == "one" || value == "two") << value;
    again.serve(7000);
  });
  sim::Host& client_host = world.add_host("client", "10.0.1.1");
  std::vector<std::string> answers;
  client_host.start([&] {
    auto store = [&](const std::string& value, std::uint64_t time) {
      SocketStream stream = open_tcp_stream(replica_host.address(), 7000);
      send_line(stream, encode_store("k", {{time, 1}, value}));
      LineReader reader(stream);
      try {
        std::optional<std::string> line = reader.read_line();
        answers.push_back(line ? *line : "<eof>");
      } catch (const BrokenResourceError&) {
        answers.push_back("<broken>");
      }
    };
    sleep(10ms);
    store("one", 1);  // before the window: acknowledged
    sleep(600ms);     // into the window (500 ms to 1 s)
    store("two", 2);  // its fsync fails: no acknowledgement
  });
  world.run([&] { sleep(1500ms); });
  EXPECT_EQ(disk_errors, 1);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0], "A");
  EXPECT_NE(answers[1], "A");
  EXPECT_GE(recovered_after, 1u);
}

TEST(KvClient, ReadsItsWritesAndSurvivesAMinorityOfCrashedReplicas) {
  sim::World world(sim::Config{.seed = 5});
  std::vector<std::string> addresses;
  std::vector<sim::Host*> replicas;
  for (int r = 1; r <= 3; ++r) {
    sim::Host& host = world.add_host("r" + std::to_string(r), "10.0.0." + std::to_string(r));
    host.start([] { KvReplica::open({}).serve(7000); });
    addresses.push_back(host.address());
    replicas.push_back(&host);
  }
  sim::Host& client_host = world.add_host("client", "10.0.1.1");
  bool done = false;
  client_host.start([&] {
    KvClient client({.replicas = addresses, .client_id = 1});
    EXPECT_EQ(client.read("x"), "");
    client.write("x", "one");
    EXPECT_EQ(client.read("x"), "one");
    replicas[0]->crash();
    client.write("x", "two");
    EXPECT_EQ(client.read("x"), "two");
    replicas[1]->crash();  // no majority left: a read cannot finish
    CancelScope scope(current_time() + 2s);
    scope.run([&] { (void)client.read("x"); });
    EXPECT_TRUE(scope.cancelled_caught());
    replicas[0]->restart();  // a majority again, one of them recovered from its disk
    EXPECT_EQ(client.read("x"), "two");
    EXPECT_GT(client.statistics().attempts_failed, 0u);
    done = true;
  });
  world.run([&] {
    while (!done) sleep(10ms);
  });
  EXPECT_TRUE(done);
}

TEST(KvScenario, IsRegisteredWithItsOption) {
  const Scenario& kv = find_scenario("kv");
  EXPECT_NO_THROW(check_options(kv, {{"planted_bug", "on"}}));
  EXPECT_THROW(check_options(kv, {{"planted", "on"}}), std::invalid_argument);
  // A switch takes a switch value, never silently "off" for a typo.
  EXPECT_NO_THROW(check_options(kv, {{"planted_bug", "off"}}));
  EXPECT_THROW(check_options(kv, {{"planted_bug", "maybe"}}), std::invalid_argument);
  EXPECT_THROW(option_on({{"planted_bug", "maybe"}}, "planted_bug"), std::invalid_argument);
  EXPECT_TRUE(option_on({{"planted_bug", "true"}}, "planted_bug"));
  EXPECT_FALSE(option_on({}, "planted_bug"));
}

TEST(KvScenario, PlantedBugIsFoundWithin1000Seeds) {
  const Scenario& kv = find_scenario("kv");
  const Options bug = {{"planted_bug", "on"}};
  const std::optional<sim::RunResult> failing = first_failing_seed(kv, bug);
  ASSERT_TRUE(failing) << "no failing seed in 1..1000";
  EXPECT_NE(failing->failure.find("is not linearizable"), std::string::npos) << failing->failure;
  expect_failure_reproduces(kv, bug, *failing);
}

// disk_faults=on and signals=on add planned EIO windows, SIGHUPs and SIGTERMs on the
// replicas (a stream of their own: the nemesis's plan is unchanged, a prefix of the whole);
// the supervised replicas, opened again after each, keep every history linearizable and the
// store live.
TEST(KvScenario, PlannedDiskErrorsAndSignalsOnReplicasPass) {
  const Scenario& kv = find_scenario("kv");
  const Options both = {{"disk_faults", "on"}, {"signals", "on"}};
  std::size_t disk = 0;
  std::size_t signals = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<sim::PlannedFault> base = planned_faults(kv, {}, seed);
    const std::vector<sim::PlannedFault> all = planned_faults(kv, both, seed);
    ASSERT_GT(all.size(), base.size());
    EXPECT_TRUE(std::equal(base.begin(), base.end(), all.begin())) << "seed " << seed;
    disk += count_planned(all, sim::PlannedFault::Kind::kDiskErrors);
    signals += count_planned(all, sim::PlannedFault::Kind::kSignal);
    for (const sim::PlannedFault& f : all) {
      if (f.kind == sim::PlannedFault::Kind::kDiskErrors ||
          f.kind == sim::PlannedFault::Kind::kSignal) {
        EXPECT_LT(f.a, 3u) << "a fault meant for a replica hit host " << f.a;
      }
    }
  }
  EXPECT_GT(disk, 10u);
  EXPECT_GT(signals, 10u);
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::uint64_t kSeeds = 30;
#else
  constexpr std::uint64_t kSeeds = 200;
#endif
  expect_seeds_pass(kv, {{"disk_faults", "on"}}, 1, kSeeds);
  expect_seeds_pass(kv, {{"signals", "on"}}, 1, kSeeds);
  expect_seeds_pass(kv, both, 1, kSeeds);
}

// With disk errors and signals on (the supervisor's restarts, the disk's failed calls), a seed
// still gives the same trace hash in another process (another address-space layout).
std::uint64_t faulty_kv_hash(std::uint64_t seed) {
  const Options both = {{"disk_faults", "on"}, {"signals", "on"}};
  const sim::RunResult r = run_seed(find_scenario("kv"), both, seed);
  EXPECT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
  return r.trace_hash;
}

TEST(KvScenario, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_KV_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, faulty_kv_hash(seed));
  }
}

TEST(KvScenario, FaultySeedsGiveTheSameHashInAnotherProcess) {
  constexpr std::uint64_t kChildSeeds = 10;
  const auto theirs = sim::testing::hashes_from_child("KvScenario.ChildPrintsHashes",
                                                      "TRELLIS_KV_CHILD_SEEDS", kChildSeeds);
  ASSERT_EQ(theirs.size(), kChildSeeds);
  for (const auto& [seed, hash] : theirs) {
    EXPECT_EQ(faulty_kv_hash(seed), hash) << "seed " << seed << " differs across processes";
  }
}

// 10,000 seeds in ten shards (ctest runs them in parallel; one shard stays far below the
// test timeout on a loaded 2-core machine); sanitizer builds run 100 each.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kSeedsPerShard = 100;
#else
constexpr std::uint64_t kSeedsPerShard = 1000;
#endif

class KvScenarioClean : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(KvScenarioClean, NoFailureWithoutTheBug) {
  expect_seeds_pass(find_scenario("kv"), {}, 1 + GetParam() * kSeedsPerShard, kSeedsPerShard);
}

INSTANTIATE_TEST_SUITE_P(Shards, KvScenarioClean, ::testing::Range<std::uint64_t>(0, 10));

}  // namespace
}  // namespace trellis::scenarios
