// Broadcast receivers of a stream (tractor's test_broadcast_channel semantics, with tokio's
// Lagged), and the registry: find_actor / wait_for_actor (tractor's test_discovery).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"

namespace trellis::actor {
namespace {

class ActorBroadcastTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(testing::live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
};
using ActorRegistryTest = ActorBroadcastTest;

TEST_F(ActorBroadcastTest, EverySubscriberGetsEveryMessage) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("producer").open_context("produce", 200);
      EXPECT_EQ(ctx->first<std::string>(), "producing");
      MsgStream stream = ctx->open_stream();
      std::vector<std::vector<int>> got(3);
      std::vector<BroadcastReceiver> receivers;
      for (int r = 0; r < 3; ++r) receivers.push_back(stream.subscribe(256));
      open_nursery([&](Nursery& n) {
        for (int r = 0; r < 3; ++r) {
          n.start_soon([&, r] {
            try {
              for (;;) got[r].push_back(receivers[r].receive<int>());
            } catch (const EndOfChannel&) {
            }
          });
        }
      });
      std::vector<int> expected;
      for (int i = 0; i < 200; ++i) expected.push_back(i);
      for (int r = 0; r < 3; ++r) EXPECT_EQ(got[r], expected) << "subscriber " << r;
      EXPECT_EQ(ctx.result<int>(), 200);
    });
  });
}

TEST_F(ActorBroadcastTest, ALaggingSubscriberGetsLaggedThenTheOldestKept) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("producer").open_context("produce", 200);
      (void)ctx->first<std::string>();
      MsgStream stream = ctx->open_stream();
      BroadcastReceiver fast = stream.subscribe(64);
      BroadcastReceiver slow = stream.subscribe();
      for (int i = 0; i < 200; ++i) ASSERT_EQ(fast.receive<int>(), i);
      EXPECT_THROW(fast.receive<int>(), EndOfChannel);
      try {
        slow.receive<int>();
        ADD_FAILURE() << "no Lagged";
      } catch (const Lagged& e) {
        EXPECT_EQ(e.skipped(), 136u);
      }
      for (int i = 136; i < 200; ++i) ASSERT_EQ(slow.receive<int>(), i);
      EXPECT_THROW(slow.receive<int>(), EndOfChannel);
      BroadcastReceiver late = stream.subscribe();  // sees only what comes after: the end
      EXPECT_THROW(late.receive<int>(), EndOfChannel);
    });
  });
}

TEST_F(ActorRegistryTest, FindActorByName) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      EXPECT_THROW(find_actor("adder"), ActorNotFound);
      Portal& adder = an.start_actor("adder");
      EXPECT_EQ(&find_actor("adder"), &adder);
      EXPECT_EQ(find_actor("adder").run<int>("add", 3, 4), 7);
      adder.cancel_actor();
      EXPECT_THROW(find_actor("adder"), ActorNotFound);
    });
    EXPECT_THROW(find_actor("adder"), ActorNotFound);
  });
}

TEST_F(ActorRegistryTest, WaitForActorWaitsUntilItStarts) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal* found = nullptr;
      Portal* started = nullptr;
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { found = &wait_for_actor("late"); });
        started = &an.start_actor("late");
      });
      EXPECT_EQ(found, started);
    });
  });
}

TEST_F(ActorRegistryTest, EachActorHasItsOwnRegistry) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      EXPECT_EQ(an.start_actor("child").run<int>("spawn_and_find"), 21);
      EXPECT_THROW(find_actor("gc"), ActorNotFound);  // the child's child has exited
    });
  });
}

}  // namespace
}  // namespace trellis::actor
