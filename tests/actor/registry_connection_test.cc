// The root drops a registration when the connection it came over closes: an actor that
// crashed is not found any more once the root has seen its connection end, even while its
// parent has yet to reap it (before, find_actor handed out the dead actor's entry and the
// call failed with BrokenActorError until the parent's report came).
//
// - TreeRegistry::remove_registration removes only the registration it names;
// - a registration made over a connection of the test's own (as an actor registers), then
//   the connection closed without unregistering: gone from the registry, real and simulated;
// - end to end, real processes: a grandchild killed while its parent is stopped (SIGSTOP, so
//   it cannot reap it nor tell the registrar): the root stops finding it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/actor/internal/channel.h"
#include "trellis/actor/internal/runtime.h"
#include "trellis/actor/protocol.h"
#include "trellis/io/tcp.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;

void check(bool condition, const std::string& what) {
  if (!condition) throw std::logic_error(what);
}

TEST(TreeRegistryRegistration, RemovesOnlyTheRegistrationItNames) {
  internal::TreeRegistry registry;
  const std::uint64_t first = registry.add({"w", "r.1", "127.0.0.1", 4000});
  registry.add({"child", "r.1.1", "127.0.0.1", 4001});
  const std::uint64_t again = registry.add({"w", "r.1", "127.0.0.1", 4002});
  EXPECT_NE(first, again);
  registry.remove_registration("r.1", first);  // registered again since: kept
  ASSERT_TRUE(registry.find("w").has_value());
  EXPECT_EQ(registry.find("w")->port, 4002);
  registry.remove_registration("r.1", again);
  EXPECT_FALSE(registry.find("w").has_value());
  EXPECT_TRUE(registry.find("child").has_value());  // the subtree stays
  registry.remove_registration("r.9", again);       // unknown: nothing happens
  EXPECT_EQ(registry.size(), 1u);
}

// In the root, inside an actor nursery: registers "ghost" over a connection of its own to the
// root's peer listener, as a child actor does, then closes the connection without
// unregistering (as a crash would). True if the root then drops it (bounded wait).
bool ghost_leaves_with_its_connection() {
  std::shared_ptr<internal::ActorRuntime> runtime = internal::current_runtime();
  check(runtime && runtime->registry, "the root holds the registry");
  internal::Channel channel(std::make_unique<SocketStream>(
      open_tcp_stream(runtime->advertised_host, runtime->peer_port)));
  channel.send(protocol::encode_hello({"ghost", "peer", 0}));
  channel.send(protocol::encode_call(
      1, "trellis.registrar.register",
      to_process::internal::pack_arguments(std::string("ghost"), std::string("r.77"),
                                           runtime->advertised_host, 1)));
  std::optional<to_process::RawFrame> answer = channel.receive();
  check(answer && answer->kind == static_cast<std::uint8_t>(protocol::Kind::kReturn),
        "the registrar answered the registration");
  check(runtime->registry->find("ghost").has_value(), "the ghost is registered");
  channel.close();
  for (int i = 0; i < 500; ++i) {
    if (!runtime->registry->find("ghost")) return true;
    sleep(10ms);
  }
  return false;
}

TEST(RegistryConnection, ARegistrationLeavesWithItsConnectionReal) {
  bool left = false;
  trellis::run([&] {
    open_actor_nursery({.cancel_grace = 2s}, [&](ActorNursery&) {
      left = ghost_leaves_with_its_connection();
    });
  });
  EXPECT_TRUE(left);
}

sim::SimBody ghost_body(bool& left) {
  return [&left](sim::World& world) {
    left = false;
    sim::Host& h1 = world.add_host("h1", "10.0.0.1");
    bool done = false;
    h1.start([&] {
      open_actor_nursery({.cancel_grace = 1s, .address = "10.0.0.1"},
                         [&](ActorNursery&) { left = ghost_leaves_with_its_connection(); });
      done = true;
    });
    world.run([&] {
      while (!done) sleep(1ms);
    });
  };
}

TEST(RegistryConnection, ARegistrationLeavesWithItsConnectionSimulated) {
  bool left = false;
  const sim::Config config{.seed = 5, .buggify_enable_ppm = 0};
  const sim::RunResult first = sim::run_simulation(ghost_body(left), config);
  ASSERT_FALSE(first.failed) << first.failure;
  EXPECT_TRUE(left);
  const sim::RunResult second = sim::run_simulation(ghost_body(left), config);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const sim::RunResult r = sim::run_simulation(ghost_body(left), {.seed = seed});
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    EXPECT_TRUE(left) << seed;
  }
}

// Real processes: "crasher" is a child of "branch"; branch is stopped, then crasher killed.
// Branch cannot reap it nor tell the registrar, yet the root stops finding it.
TEST(RegistryConnection, ACrashedActorIsNotFoundBeforeItsParentReapsIt) {
  trellis::run([] {
    open_actor_nursery({.cancel_grace = 2s}, [](ActorNursery& an) {
      Portal& branch = an.start_actor("branch");
      ContextHandle hold = branch.open_context("tree.hold_child", "crasher");
      (void)hold->first<int>();
      const int crasher_pid = find_actor("crasher").run<int>("my_pid");
      ASSERT_EQ(::kill(branch.pid(), SIGSTOP), 0);
      ASSERT_EQ(::kill(crasher_pid, SIGKILL), 0);
      bool not_found = false;
      for (int i = 0; i < 500 && !not_found; ++i) {
        try {
          find_actor("crasher");
        } catch (const ActorNotFound&) {
          not_found = true;
        } catch (const BrokenActorError&) {  // its entry, still: the dead actor's address
        }
        if (!not_found) sleep(10ms);
      }
      ::kill(branch.pid(), SIGCONT);
      EXPECT_TRUE(not_found) << "find_actor still named the killed actor while its parent "
                                "was stopped";
    });
  });
  EXPECT_EQ(testing::live_children(), std::vector<int>{});
}

}  // namespace
}  // namespace trellis::actor
