// The root drops a registration when the connection it came over closes: an actor that
// crashed is not found any more once the root has seen its connection end, even while its
// parent has yet to reap it (before, find_actor handed out the dead actor's entry and the
// call failed with BrokenActorError until the parent's report came).
//
// - TreeRegistry::remove_registration removes only the registration it names;
// - a child ("ghosted") that registers a made-up actor "ghost" with the root's registrar
//   over a connection of its own, closes it without unregistering, then says hello to its
//   parent and lives on: "ghost" leaves the registry (no parent will ever report it), real
//   and simulated;
// - end to end, real processes: a grandchild killed while its parent is stopped (SIGSTOP, so
//   it cannot reap it nor tell the registrar): the root stops finding it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/actor/protocol.h"
#include "trellis/actor/tree_registry.h"
#include "trellis/io/tcp.h"
#include "trellis/sim.h"
#include "trellis/to_process/frame.h"
#include "trellis/to_process/worker.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;

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

// "host:port" of the argument `flag` ("--registrar=") in a child actor's argv.
std::pair<std::string, std::uint16_t> address_argument(const std::vector<std::string>& argv,
                                                       const std::string& flag) {
  for (const std::string& argument : argv) {
    if (!argument.starts_with(flag)) continue;
    const std::string value = argument.substr(flag.size());
    const std::size_t colon = value.rfind(':');
    return {value.substr(0, colon), static_cast<std::uint16_t>(std::stoi(value.substr(colon + 1)))};
  }
  throw std::logic_error("no " + flag + " argument");
}

void send_frame(SocketStream& stream, const std::vector<char>& frame) {
  stream.send_all(std::as_bytes(std::span<const char>(frame)));
}

// The next frame of `stream` (nullopt at its end).
std::optional<to_process::RawFrame> next_frame(SocketStream& stream,
                                               to_process::RawFrameReader& reader) {
  for (;;) {
    if (std::optional<to_process::RawFrame> frame = reader.next()) return frame;
    std::vector<std::byte> buffer(4096);
    const std::size_t got = stream.receive_some(buffer);
    if (got == 0) return std::nullopt;
    reader.feed(std::span<const char>(reinterpret_cast<const char*>(buffer.data()), got));
  }
}

// The "ghosted" child actor (run in a run or a simulated host): registers "ghost" (uid r.77,
// an unreachable port) over a connection of its own, which it closes without unregistering
// as a crashed actor's would be; then says hello to its parent and waits for its cancel.
int register_ghost_then_serve_nothing(const std::vector<std::string>& argv) {
  const auto [registrar_host, registrar_port] = address_argument(argv, "--registrar=");
  {
    SocketStream registrar = open_tcp_stream(registrar_host, registrar_port);
    to_process::RawFrameReader reader(protocol::kActorFrameFormat);
    send_frame(registrar, protocol::encode_hello({"ghost", "peer", 0}));
    send_frame(registrar, protocol::encode_call(
                              1, "trellis.registrar.register",
                              to_process::internal::pack_arguments(
                                  std::string("ghost"), std::string("r.77"), registrar_host, 1)));
    std::optional<to_process::RawFrame> answer = next_frame(registrar, reader);
    if (!answer || answer->kind != static_cast<std::uint8_t>(protocol::Kind::kReturn)) return 7;
    registrar.close();
  }
  std::string uid;
  for (const std::string& argument : argv) {
    if (argument.starts_with("--uid=")) uid = argument.substr(6);
  }
  const auto [parent_host, parent_port] = address_argument(argv, "--parent=");
  SocketStream parent = open_tcp_stream(parent_host, parent_port);
  to_process::RawFrameReader reader(protocol::kActorFrameFormat);
  send_frame(parent, protocol::encode_hello({"ghosted", uid, 0}));
  while (std::optional<to_process::RawFrame> frame = next_frame(parent, reader)) {
    if (frame->kind == static_cast<std::uint8_t>(protocol::Kind::kCancelActor)) break;
  }
  return 0;
}

// In the root: starts "ghosted"; true if "ghost" then leaves the registry (bounded wait).
// Before the root dropped registrations with their connections, find_actor("ghost") kept
// finding the entry and failing to connect (BrokenActorError).
bool ghost_leaves_the_registry(ActorNursery& an) {
  an.start_actor("ghosted");
  for (int i = 0; i < 500; ++i) {
    try {
      find_actor("ghost");
    } catch (const ActorNotFound&) {
      return true;
    } catch (const BrokenActorError&) {  // registered, unreachable
    }
    sleep(10ms);
  }
  return false;
}

TEST(RegistryConnection, ARegistrationLeavesWithItsConnectionReal) {
  bool left = false;
  trellis::run([&] {
    open_actor_nursery({.cancel_grace = 2s}, [&](ActorNursery& an) {
      ::setenv("TRELLIS_ACTOR_TEST_MISBEHAVE", "ghost", 1);
      struct Unset {
        ~Unset() { ::unsetenv("TRELLIS_ACTOR_TEST_MISBEHAVE"); }
      } unset;
      left = ghost_leaves_the_registry(an);
    });
  });
  EXPECT_TRUE(left);
  EXPECT_EQ(testing::live_children(), std::vector<int>{});
}

sim::SimBody ghost_body(bool& left) {
  return [&left](sim::World& world) {
    left = false;
    sim::Host& h1 = world.add_host("h1", "10.0.0.1");
    h1.install_program(std::string(to_process::kSelfExecutable), [](sim::ProgramIo& io) {
      for (const std::string& argument : io.argv) {
        if (argument == "--name=ghosted") return register_ghost_then_serve_nothing(io.argv);
      }
      return serve_actor_program(io.argv);
    });
    bool done = false;
    h1.start([&] {
      open_actor_nursery({.cancel_grace = 1s, .address = "10.0.0.1"},
                         [&](ActorNursery& an) { left = ghost_leaves_the_registry(an); });
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

int testing::ghost_child_main(const std::vector<std::string>& argv) {
  return register_ghost_then_serve_nothing(argv);
}

}  // namespace trellis::actor
