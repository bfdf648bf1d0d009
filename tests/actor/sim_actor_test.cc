// The same actor code inside the simulator: each child actor is a fake program on a
// simulated host (no real process), talking to its parent over simulated TCP. Runs are
// deterministic: the same seed gives the same trace hash.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "../sim/child_process.h"
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

// The actor program of actor_test.cc, in virtual time: calls, a remote error, run_in_actor,
// a context streaming both ways, a grandchild's error relayed to the root, transitive
// cancellation, a cancelled nursery.
void actor_tree() {
  open_actor_nursery({.cancel_grace = 1s}, [](ActorNursery& an) {
    Portal& portal = an.start_actor("adder");
    if (portal.run<int>("add", 2, 3) != 5) throw std::logic_error("wrong sum");
    if (portal.run<std::string>("greet", std::string("sim")) != "hello sim from adder") {
      throw std::logic_error("wrong greeting");
    }
    try {
      portal.run<void>("fail", std::string("expected"));
      throw std::logic_error("no remote error");
    } catch (const RemoteActorError& e) {
      if (e.type_name() != "std::invalid_argument" || e.actor_name() != "adder") throw;
    }
    {  // a context with a stream, flow control included (more messages than the window)
      ContextHandle ctx = portal.open_context("echo_stream", 1000);
      if (ctx->first<int>() != 1000) throw std::logic_error("wrong started value");
      MsgStream stream = ctx->open_stream();
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          for (int i = 0; i < 200; ++i) stream.send(i);
          stream.close();
        });
        for (int i = 0; i < 200; ++i) {
          if (stream.receive<int>() != 1000 + i) throw std::logic_error("wrong echo");
        }
      });
      if (ctx.result<int>() != 200) throw std::logic_error("wrong context result");
    }
    {  // the producer fills its window before the caller opens its stream: no overrun
      ContextHandle ctx = portal.open_context("produce", 300);
      (void)ctx->first<std::string>();
      sleep(500ms);
      MsgStream stream = ctx->open_stream();
      for (int i = 0; i < 300; ++i) {
        if (stream.receive<int>() != i) throw std::logic_error("wrong stream message");
      }
      if (ctx.result<int>() != 300) throw std::logic_error("wrong producer result");
    }
    Portal& one = an.run_in_actor("one", "add", 40, 2);
    if (one.result<int>() != 42) throw std::logic_error("wrong run_in_actor result");
    try {
      an.start_actor("parent").run<void>("spawn_and_fail", std::string("deep"));
      throw std::logic_error("no relayed error");
    } catch (const ExceptionGroup&) {
      throw;
    } catch (const RemoteActorError& e) {
      if (e.actor_name() != "grandchild" || e.relayed_through().size() != 1) throw;
    }
    // Cancelled remotely (the caller only waits to hand the cancel request to the network).
    CancelScope scope;
    scope.set_deadline(current_time() + 50ms);
    scope.run([&] { portal.run<void>("sleep_forever"); });
    if (!scope.cancelled_caught()) throw std::logic_error("the call was not cancelled");
    if (portal.run<int>("add", 1, 1) != 2) throw std::logic_error("actor stopped serving");
    an.start_actor("idle");
  });
  // A cancelled actor nursery is not an error.
  open_actor_nursery({.cancel_grace = 1s}, [](ActorNursery& an) {
    an.run_in_actor("sleeper", "sleep_forever");
    an.cancel_scope().cancel();
    sleep(1h);
  });
}

sim::SimBody body(bool& done) {
  return [&done](sim::World& world) {
    done = false;
    sim::Host& host = world.add_host("h", "10.0.0.1");
    install_actors(host);
    host.start([&] {
      actor_tree();
      done = true;
    });
    world.run([&] {
      while (!done) sleep(1ms);
    });
  };
}

TEST(ActorSim, TheSameActorCodeRunsInAWorldDeterministically) {
  bool done = false;
  const sim::Config config{.seed = 7, .buggify_enable_ppm = 0};
  const sim::RunResult first = sim::run_simulation(body(done), config);
  ASSERT_FALSE(first.failed) << first.failure;
  EXPECT_TRUE(done);
  const sim::RunResult second = sim::run_simulation(body(done), config);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(sim::check_determinism(body(done), config), std::nullopt);
}

TEST(ActorSim, SeveralSeedsPass) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    bool done = false;
    const sim::RunResult r = sim::run_simulation(body(done), {.seed = seed});
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    EXPECT_TRUE(done) << seed;
  }
}

// The same seeds give the same hashes in another process (another address-space layout):
// the actor tree's processes, connections and messages depend on nothing but the seed.
std::uint64_t actor_tree_hash(std::uint64_t seed) {
  bool done = false;
  return sim::run_simulation(body(done), {.seed = seed, .buggify_enable_ppm = 0}).trace_hash;
}

TEST(ActorSim, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_ACTOR_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, actor_tree_hash(seed));
  }
}

TEST(ActorSim, SameHashInAnotherProcess) {
  const auto theirs =
      sim::testing::hashes_from_child("ActorSim.ChildPrintsHashes", "TRELLIS_ACTOR_CHILD_SEEDS", 4);
  ASSERT_EQ(theirs.size(), 4u);
  for (const auto& [seed, hash] : theirs) EXPECT_EQ(actor_tree_hash(seed), hash) << seed;
}

}  // namespace
}  // namespace trellis::actor
