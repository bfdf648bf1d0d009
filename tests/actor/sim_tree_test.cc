// An actor tree in the simulator with injected worker failures (issue 19's scenario: its
// production code is the actor-tree scenario's, scenarios/.../actor_tree/, which `trellis
// sweep actor-tree` runs on two hosts; here on one host, and through the registry): a supervisor
// (the root) streams items to a worker actor through a context, the worker answers each with its
// square, and fails now and then (a buggify point). The supervisor replaces a failed worker and
// re-sends the items still in flight. The planted bug re-sends one item too many (the last one
// already answered), which only a failure after an answer exposes: a seed sweep finds it, the
// failing seed replays with the same trace, and the correct supervisor passes every seed of the
// sweep.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "trellis/actor.h"
#include "trellis/scenarios/actor_tree/actor_tree.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/sim.h"
#include "trellis/to_process/worker.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;

constexpr int kItems = 40;
int restarts = 0;  // workers replaced after a failure, over a sweep

sim::SimBody tree(bool planted_bug, bool& done) {
  return [planted_bug, &done](sim::World& world) {
    done = false;
    sim::Host& host = world.add_host("h", "10.0.0.1");
    host.install_program(std::string(to_process::kSelfExecutable),
                         [](sim::ProgramIo& io) { return serve_actor_program(io.argv); });
    host.start([&] {
      std::map<int, int> delivered;
      open_actor_nursery({.cancel_grace = 1s}, [&](ActorNursery& an) {
        restarts += scenarios::actor_tree::supervise(
            an, {.items = kItems, .planted_bug = planted_bug}, delivered);
      });
      if (delivered.size() != static_cast<std::size_t>(kItems)) {
        throw std::logic_error("items lost");
      }
      done = true;
    });
    world.run([&] {
      while (!done) sleep(10ms);
    });
  };
}

TEST(ActorTreeSim, TheCorrectSupervisorSurvivesWorkerFailuresOnEverySeed) {
  restarts = 0;
  // TRELLIS_ACTOR_TREE_SEEDS=10000 for the long sweep.
  const char* env = std::getenv("TRELLIS_ACTOR_TREE_SEEDS");
  const std::uint64_t seeds = env != nullptr ? std::strtoull(env, nullptr, 10) : 200;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    bool done = false;
    const sim::RunResult r = sim::run_simulation(tree(false, done), {.seed = seed});
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    ASSERT_TRUE(done);
  }
  EXPECT_GT(restarts, 0);  // failures were injected, and survived
  std::printf("actor tree: %llu clean seeds, %d workers replaced after a failure\n",
              static_cast<unsigned long long>(seeds), restarts);
}

TEST(ActorTreeSim, APlantedDuplicateIsFoundBySweepAndReplays) {
  std::optional<sim::RunResult> failing;
  bool done = false;
  for (std::uint64_t seed = 1; seed <= 200 && !failing; ++seed) {
    sim::RunResult r = sim::run_simulation(tree(true, done), {.seed = seed});
    if (r.failed) failing = r;
  }
  ASSERT_TRUE(failing.has_value()) << "no seed exposed the planted bug";
  std::printf("actor tree: the planted bug found with seed %llu: %s\n",
              static_cast<unsigned long long>(failing->config.seed), failing->failure.c_str());
  EXPECT_NE(failing->failure.find("delivered twice"), std::string::npos) << failing->failure;
  const sim::RunResult again = sim::run_simulation(tree(true, done), failing->config);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, failing->trace_hash);
}

// The registered scenario (workers on a second host), as `trellis sweep actor-tree` runs it:
// clean seeds pass, the planted bug is found, and a run is deterministic.
TEST(ActorTreeSim, TheRegisteredScenarioSweepsAndFindsThePlantedBug) {
  const scenarios::Scenario& scenario = scenarios::find_scenario("actor-tree");
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const sim::RunResult r =
        scenarios::run_scenario(scenario, {}, scenarios::scenario_config(scenario, {}, seed));
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
  }
  const scenarios::Options bug{{"planted_bug", "on"}};
  std::optional<sim::RunResult> failing;
  for (std::uint64_t seed = 1; seed <= 300 && !failing; ++seed) {
    sim::RunResult r =
        scenarios::run_scenario(scenario, bug, scenarios::scenario_config(scenario, bug, seed));
    if (r.failed) failing = r;
  }
  ASSERT_TRUE(failing.has_value()) << "no seed exposed the planted bug";
  EXPECT_NE(failing->failure.find("delivered twice"), std::string::npos) << failing->failure;
  const sim::RunResult again = scenarios::run_scenario(scenario, bug, failing->config);
  EXPECT_EQ(again.trace_hash, failing->trace_hash);
}

}  // namespace
}  // namespace trellis::actor
