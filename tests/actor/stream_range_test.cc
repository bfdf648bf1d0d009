// Range-for over a MsgStream (and a BroadcastReceiver): the loop ends cleanly at the other
// side's close and raises every other error (a remote failure, a message of the wrong type).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actor_functions.h"
#include "tree_functions.h"
#include "trellis/actor.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

class ActorStreamRangeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(testing::live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
};

TEST_F(ActorStreamRangeTest, TypedLoopEndsAtThePeersClose) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("producer").open_context("produce", 300);
      EXPECT_EQ(ctx->first<std::string>(), "producing");
      MsgStream stream = ctx->open_stream();
      std::vector<int> got;
      for (int value : stream.messages<int>()) got.push_back(value);
      ASSERT_EQ(got.size(), 300u);
      for (int i = 0; i < 300; ++i) EXPECT_EQ(got[i], i);
      EXPECT_EQ(ctx.result<int>(), 300);
    });
  });
}

TEST_F(ActorStreamRangeTest, UntypedLoopGivesMessages) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("echo").open_context("echo_stream", 10);
      (void)ctx->first<int>();
      MsgStream stream = ctx->open_stream();
      for (int i = 0; i < 3; ++i) stream.send(i);
      stream.close();  // the echo returns once it has answered all three
      std::vector<int> got;
      for (auto message : stream) got.push_back(message.as<int>());
      EXPECT_EQ(got, (std::vector<int>{10, 11, 12}));
      EXPECT_EQ(ctx.result<int>(), 3);
    });
  });
}

TEST_F(ActorStreamRangeTest, ARemoteErrorIsRaisedFromTheLoop) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("failer").open_context("tree.produce_then_fail", 5);
      (void)ctx->first<int>();
      MsgStream stream = ctx->open_stream();
      std::vector<int> got;
      try {
        for (int value : stream.messages<int>()) got.push_back(value);
        ADD_FAILURE() << "the loop ended without the remote error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "std::out_of_range");
        EXPECT_EQ(e.actor_name(), "failer");
      }
      EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
    });
  });
}

TEST_F(ActorStreamRangeTest, AMessageOfTheWrongTypeIsRaisedFromTheLoop) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("mixed").open_context("tree.produce_mixed");
      (void)ctx->first<int>();
      MsgStream stream = ctx->open_stream();
      std::vector<std::string> got;
      EXPECT_THROW(
          {
            for (std::string value : stream.messages<std::string>()) got.push_back(value);
          },
          msgpack::type_error);
      EXPECT_EQ(got, (std::vector<std::string>{"one"}));
      // Untyped, the same stream's end is clean.
      int rest = 0;
      for (auto message : stream) rest += static_cast<int>(message.packed().size() > 0);
      EXPECT_EQ(rest, 0);
    });
  });
}

TEST_F(ActorStreamRangeTest, ABroadcastReceiverLoops) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      ContextHandle ctx = an.start_actor("producer").open_context("produce", 50);
      (void)ctx->first<std::string>();
      MsgStream stream = ctx->open_stream();
      BroadcastReceiver a = stream.subscribe(100);
      BroadcastReceiver b = stream.subscribe();
      int sum_a = 0;
      int count_b = 0;
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          for (int value : a.messages<int>()) sum_a += value;
        });
        for (auto message : b) count_b += message.as<int>() >= 0 ? 1 : 0;
      });
      EXPECT_EQ(sum_a, 49 * 50 / 2);
      EXPECT_EQ(count_b, 50);
    });
  });
}

}  // namespace
}  // namespace trellis::actor
