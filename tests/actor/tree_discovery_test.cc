// Tree-wide discovery with real processes: the root's registrar, find_actor / wait_for_actor
// from any actor of the tree, and a dead actor (stopped, crashed, or killed with its subtree)
// leaving the registry. Every test checks that no child process is left.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "actor_functions.h"
#include "tree_functions.h"
#include "trellis/actor.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;

class ActorTreeDiscoveryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(testing::live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
};

// Waits (bounded) until find_actor(name) throws ActorNotFound in this actor (until its
// parent has reaped it, the registry may still name an actor that cannot be reached:
// BrokenActorError).
bool wait_until_unregistered(const std::string& name) {
  for (int i = 0; i < 1000; ++i) {
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

TEST_F(ActorTreeDiscoveryTest, AGrandchildFindsAnActorOfAnotherBranch) {
  trellis::run([] {
    open_actor_nursery({.cancel_grace = 2s}, [](ActorNursery& an) {
      // Branch b: root -> "branch_b" -> "leaf_b".
      ContextHandle hold = an.start_actor("branch_b").open_context("tree.hold_child", "leaf_b");
      EXPECT_EQ(hold->first<int>(), 0);
      // Branch a: root -> "branch_a" -> "seeker", which looks leaf_b up and calls it.
      EXPECT_EQ(an.start_actor("branch_a")
                    .run<int>("tree.spawn_and_call", std::string("seeker"),
                              std::string("tree.find_and_add"), std::string("leaf_b")),
                42);
      // The root finds it too (not its child: a direct connection to it), and a child finds
      // the root.
      Portal& leaf = find_actor("leaf_b");
      EXPECT_EQ(leaf.actor_name(), "leaf_b");
      EXPECT_EQ(leaf.run<std::string>("greet", std::string("root")), "hello root from leaf_b");
      EXPECT_EQ(&find_actor("leaf_b"), &leaf);  // the connection is kept
      EXPECT_EQ(find_actor("branch_a").run<int>("tree.find_and_add", std::string("root")), 42);
      // Unknown names: a clear ActorNotFound here, and one relayed from a grandchild.
      EXPECT_THROW(find_actor("nobody"), ActorNotFound);
      try {
        an.start_actor("branch_c")
            .run<int>("tree.spawn_and_call", std::string("seeker2"),
                      std::string("tree.find_and_add"), std::string("nobody"));
        ADD_FAILURE() << "found nobody";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "trellis::actor::ActorNotFound");
        EXPECT_EQ(e.actor_name(), "seeker2");
        EXPECT_NE(std::string(e.what()).find("'nobody' is registered"), std::string::npos)
            << e.what();
      }
    });
  });
}

TEST_F(ActorTreeDiscoveryTest, WaitForActorBlocksUntilALateActorRegisters) {
  trellis::run([] {
    open_actor_nursery({.cancel_grace = 2s}, [](ActorNursery& an) {
      Portal& waiter = an.start_actor("waiter");
      bool late_started = false;
      int result = 0;
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          result = waiter.run<int>("tree.wait_and_add", std::string("late"));
          EXPECT_TRUE(late_started) << "wait_for_actor returned before 'late' existed";
        });
        sleep(300ms);
        EXPECT_EQ(result, 0);
        // Started under another branch, so the waiter learns of it from the root only.
        late_started = true;
        ContextHandle hold = an.start_actor("branch").open_context("tree.hold_child", "late");
        (void)hold->first<int>();
        // Keep it until the waiter's call is done.
        while (result == 0) sleep(10ms);
      });
      EXPECT_EQ(result, 42);
    });
  });
}

TEST_F(ActorTreeDiscoveryTest, ADeadActorIsUnregisteredStoppedCrashedOrKilledWithItsSubtree) {
  trellis::run([] {
    open_actor_nursery({.cancel_grace = 2s}, [](ActorNursery& an) {
      Portal& asker = an.start_actor("asker");
      auto registered = [&](const std::string& name) {
        return asker.run<bool>("tree.is_registered", name);
      };
      // Stopped by its parent.
      Portal& temp = an.start_actor("temp");
      EXPECT_TRUE(registered("temp"));
      temp.cancel_actor();
      EXPECT_FALSE(registered("temp"));
      // Crashed (SIGKILL): its parent reaps it and tells the registrar.
      ContextHandle hold = an.start_actor("branch").open_context("tree.hold_child", "crasher");
      (void)hold->first<int>();
      EXPECT_TRUE(registered("crasher"));
      EXPECT_THROW(find_actor("crasher").run<void>("crash"), BrokenActorError);
      EXPECT_TRUE(wait_until_unregistered("crasher"));
      EXPECT_FALSE(registered("crasher"));
      EXPECT_TRUE(registered("branch"));
      // Killed with its subtree: the root reaps "branch2" and drops its child with it.
      Portal& branch2 = an.start_actor("branch2");
      ContextHandle hold2 = branch2.open_context("tree.hold_child", "orphan");
      (void)hold2->first<int>();
      EXPECT_TRUE(registered("orphan"));
      ::kill(branch2.pid(), SIGKILL);
      EXPECT_TRUE(wait_until_unregistered("branch2"));
      EXPECT_FALSE(registered("orphan"));
      EXPECT_FALSE(registered("branch2"));
    });
  });
}

TEST_F(ActorTreeDiscoveryTest, OutsideATreeFindActorIsAClearError) {
  trellis::run([] {
    try {
      find_actor("anyone");
      ADD_FAILURE() << "found an actor outside any tree";
    } catch (const ActorNotFound& e) {
      EXPECT_NE(std::string(e.what()).find("not in an actor tree"), std::string::npos) << e.what();
    }
  });
}

TEST_F(ActorTreeDiscoveryTest, TheRealBackendRefusesAHost) {
  trellis::run([] {
    // On loopback another host could not reach this actor: refused before anything starts.
    open_actor_nursery([](ActorNursery& an) {
      try {
        an.start_actor("far", {.host = "10.0.0.2"});
        ADD_FAILURE() << "started on a host";
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("another host cannot reach"), std::string::npos)
            << e.what();
      }
    });
    // Listening elsewhere, the real process facet refuses the host: one machine only.
    open_actor_nursery({.address = "127.0.0.2"}, [](ActorNursery& an) {
      try {
        an.start_actor("far", {.host = "10.0.0.2"});
        ADD_FAILURE() << "started on a host";
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("starts processes on this machine only"),
                  std::string::npos)
            << e.what();
      }
      EXPECT_EQ(an.start_actor("near").run<int>("add", 1, 2), 3);  // 127.0.0.2 works
    });
  });
}

}  // namespace
}  // namespace trellis::actor
