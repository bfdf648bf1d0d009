// Actors on several simulated hosts (ActorOptions::host) and tree-wide discovery in a World:
// a grandchild finds an actor of another branch on another host; a partition between the
// parent's and the child's hosts makes Portal::run time out under the caller's scope (never
// past it), and the call works again once healed; a crashed host's actor leaves the
// registry. Deterministic: the same seed gives the same trace hash, in another process too.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "../sim/child_process.h"
#include "tree_functions.h"
#include "trellis/actor.h"
#include "trellis/sim.h"
#include "trellis/to_process/worker.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;

void install_actors(sim::Host& host) {
  host.install_program(std::string(to_process::kSelfExecutable),
                       [](sim::ProgramIo& io) { return serve_actor_program(io.argv); });
}

void check(bool condition, const std::string& what) {
  if (!condition) throw std::logic_error(what);
}

// True once find_actor(name) throws ActorNotFound (bounded).
bool unregistered_soon(const std::string& name) {
  for (int i = 0; i < 500; ++i) {
    try {
      find_actor(name);
    } catch (const ActorNotFound&) {
      return true;
    } catch (const BrokenActorError&) {
    }
    sleep(10ms);
  }
  return false;
}

// The root, on h1: branches on h1 and h2, discovery across them, a partition, a crash.
void tree_across_hosts(sim::World& world, sim::Host& h1, sim::Host& h2, std::string& log) {
  open_actor_nursery({.cancel_grace = 1s, .address = "10.0.0.1"}, [&](ActorNursery& an) {
    // Branch b on h2 (its child "leaf_b" there too); branch a on h1 finds leaf_b.
    ContextHandle hold =
        an.start_actor("branch_b", {.host = "h2"}).open_context("tree.hold_child", "leaf_b");
    check(hold->first<int>() == 0, "hold_child started");
    check(an.start_actor("branch_a")
                  .run<int>("tree.spawn_and_call", std::string("seeker"),
                            std::string("tree.find_and_add"), std::string("leaf_b")) == 42,
          "a grandchild on h1 calls leaf_b on h2");
    // wait_for_actor: "late" registers after the waiter asked.
    Portal& waiter = an.start_actor("waiter", {.host = "h2"});
    int waited = 0;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { waited = waiter.run<int>("tree.wait_and_add", std::string("late")); });
      sleep(200ms);
      check(waited == 0, "wait_for_actor returned early");
      Portal& late = an.start_actor("late");
      while (waited == 0) sleep(1ms);
      late.cancel_actor();
    });
    check(waited == 42, "wait_for_actor");
    check(unregistered_soon("late"), "a stopped actor leaves the registry");

    // A partition between the parent's host and the child's: the call times out under the
    // caller's scope, never later; healed, the same portal works again.
    Portal& remote = an.start_actor("remote", {.host = "h2"});
    check(remote.run<int>("add", 1, 2) == 3, "remote add");
    world.partition(h1, h2);
    const Time before = current_time();
    std::string outcome = "answered";
    CancelScope scope;
    scope.set_deadline(before + 2s);
    scope.run([&] {
      try {
        remote.run<int>("add", 2, 3);
      } catch (const BrokenActorError& e) {
        outcome = std::string("broken: ") + e.what();
      }
    });
    if (scope.cancelled_caught()) outcome = "timed out";
    check(current_time() - before <= 2s + 10ms, "the call outlived its cancel scope");
    check(outcome != "answered", "answered across a partition");
    log += "partitioned call: " + outcome + "\n";
    world.heal_all();
    check(remote.run<int>("add", 3, 4) == 7, "the portal works again after healing");

    // A remote error from two hosts away keeps its task tree.
    try {
      an.start_actor("failer", {.host = "h2"}).run<void>("tree.fail_deep", 1, std::string("far"));
      throw std::logic_error("no remote error");
    } catch (const RemoteActorError& e) {
      check(e.remote_tree() == std::vector<RemoteActorError::Task>{{"deep1", "tree.fail_deep"},
                                                                   {"failer", "tree.fail_deep"}},
            std::string("the task tree: ") + e.what());
    }

    // A crashed host: its actors are reaped by their parents and leave the registry.
    h2.crash();
    try {
      remote.run<int>("add", 1, 1);
      throw std::logic_error("a crashed host answered");
    } catch (const BrokenActorError& e) {
      log += std::string("crashed host: ") + e.what() + "\n";
    }
    check(unregistered_soon("remote"), "the crashed host's actor leaves the registry");
    check(unregistered_soon("branch_b"), "branch_b leaves the registry");
    check(unregistered_soon("leaf_b"), "leaf_b (its subtree) leaves the registry");
  });
}

sim::SimBody body(bool& done, std::string& log) {
  return [&done, &log](sim::World& world) {
    done = false;
    log.clear();
    sim::Host& h1 = world.add_host("h1", "10.0.0.1");
    sim::Host& h2 = world.add_host("h2", "10.0.0.2");
    install_actors(h1);
    install_actors(h2);
    h1.start([&] {
      tree_across_hosts(world, h1, h2, log);
      done = true;
    });
    world.run([&] {
      while (!done) sleep(1ms);
    });
  };
}

TEST(ActorSimHosts, ActorsOnSeveralHostsDiscoveryPartitionAndCrash) {
  bool done = false;
  std::string log;
  const sim::Config config{.seed = 11, .buggify_enable_ppm = 0};
  const sim::RunResult first = sim::run_simulation(body(done, log), config);
  ASSERT_FALSE(first.failed) << first.failure;
  EXPECT_TRUE(done);
  EXPECT_NE(log.find("partitioned call: "), std::string::npos) << log;
  std::printf("%s", log.c_str());
  const sim::RunResult second = sim::run_simulation(body(done, log), config);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
}

TEST(ActorSimHosts, SeveralSeedsPass) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    bool done = false;
    std::string log;
    const sim::RunResult r = sim::run_simulation(body(done, log), {.seed = seed});
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    EXPECT_TRUE(done) << seed;
  }
}

std::uint64_t hosts_hash(std::uint64_t seed) {
  bool done = false;
  std::string log;
  return sim::run_simulation(body(done, log), {.seed = seed, .buggify_enable_ppm = 0}).trace_hash;
}

TEST(ActorSimHosts, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_ACTOR_HOSTS_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, hosts_hash(seed));
  }
}

TEST(ActorSimHosts, SameHashInAnotherProcess) {
  const auto theirs = sim::testing::hashes_from_child("ActorSimHosts.ChildPrintsHashes",
                                                      "TRELLIS_ACTOR_HOSTS_CHILD_SEEDS", 4);
  ASSERT_EQ(theirs.size(), 4u);
  for (const auto& [seed, hash] : theirs) EXPECT_EQ(hosts_hash(seed), hash) << seed;
}

}  // namespace
}  // namespace trellis::actor
