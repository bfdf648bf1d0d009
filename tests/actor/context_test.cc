// Contexts across processes (ports of tractor's test_2way / test_context_stream_semantics):
// started/first, a bidirectional stream, results and errors, overrun, cancellation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"

namespace trellis::actor {
namespace {

using testing::make_temp_dir;
using testing::wait_for_file;

class ActorContextTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(testing::live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
};

TEST_F(ActorContextTest, StartedStreamAndResult) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("echo");
      ContextHandle ctx = portal.open_context("echo_stream", 100);
      EXPECT_EQ(ctx->first<int>(), 100);
      MsgStream stream = ctx->open_stream();
      for (int i = 1; i <= 5; ++i) {
        stream.send(i);
        EXPECT_EQ(stream.receive<int>(), 100 + i);
      }
      stream.close();
      EXPECT_EQ(ctx.result<int>(), 5);
      EXPECT_THROW(stream.receive<int>(), EndOfChannel);
      EXPECT_EQ(portal.run<int>("add", 1, 2), 3);  // the portal serves calls beside contexts
    });
  });
}

TEST_F(ActorContextTest, ManyMessagesFlowWithBackpressure) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("producer");
      ContextHandle ctx = portal.open_context("produce", 1000);
      EXPECT_EQ(ctx->first<std::string>(), "producing");
      // The producer fills its window before this side opens its stream: it waits for the
      // opening (a grace period), no overrun.
      trellis::sleep(std::chrono::milliseconds(100));
      MsgStream stream = ctx->open_stream();
      for (int i = 0; i < 1000; ++i) ASSERT_EQ(stream.receive<int>(), i);
      EXPECT_THROW(stream.receive<int>(), EndOfChannel);
      EXPECT_EQ(ctx.result<int>(), 1000);
    });
  });
}

TEST_F(ActorContextTest, TwoContextsOnOnePortalAtOnce) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("echo");
      ContextHandle a = portal.open_context("echo_stream", 1000);
      ContextHandle b = portal.open_context("echo_stream", 2000);
      EXPECT_EQ(b->first<int>(), 2000);
      EXPECT_EQ(a->first<int>(), 1000);
      MsgStream sa = a->open_stream();
      MsgStream sb = b->open_stream();
      sa.send(1);
      sb.send(2);
      EXPECT_EQ(sb.receive<int>(), 2002);
      EXPECT_EQ(sa.receive<int>(), 1001);
      sa.close();
      sb.close();
      EXPECT_EQ(a.result<int>(), 1);
      EXPECT_EQ(b.result<int>(), 1);
    });
  });
}

TEST_F(ActorContextTest, RemoteErrorSurfacesFromResult) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("failing");
      ContextHandle ctx = portal.open_context("context_fails");
      EXPECT_EQ(ctx->first<int>(), 1);
      try {
        ctx.result<void>();
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "std::out_of_range");
        EXPECT_EQ(e.message(), "context failure");
        EXPECT_EQ(e.actor_name(), "failing");
      }
      EXPECT_EQ(portal.run<int>("add", 1, 2), 3);
    });
  });
}

TEST_F(ActorContextTest, SendingToASideThatNeverOpenedItsStreamOverruns) {
  const std::string dir = make_temp_dir();
  trellis::run([&] {
    open_actor_nursery([&](ActorNursery& an) {
      Portal& portal = an.start_actor("deaf");
      ContextHandle ctx = portal.open_context("never_opens", dir);
      EXPECT_EQ(ctx->first<int>(), 0);
      MsgStream stream = ctx->open_stream();
      int sent = 0;
      try {
        for (; sent < 1000; ++sent) stream.send(sent);
        ADD_FAILURE() << "no overrun";
      } catch (const StreamOverrun& e) {
        EXPECT_NE(std::string(e.what()).find("has not opened its stream"), std::string::npos);
      }
      EXPECT_EQ(sent, 64);
      ctx->cancel();
      EXPECT_THROW(ctx.result<void>(), ContextCancelled);
      EXPECT_TRUE(wait_for_file(dir + "/cancelled"));
    });
  });
}

TEST_F(ActorContextTest, CancellingTheCallerCancelsTheRemoteContextTask) {
  const std::string dir = make_temp_dir();
  trellis::run([&] {
    open_actor_nursery([&](ActorNursery& an) {
      Portal& portal = an.start_actor("sleeper");
      CancelScope scope;
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          scope.run([&] {
            ContextHandle ctx = portal.open_context("never_opens", dir);
            ctx.result<void>();
          });
        });
        ASSERT_TRUE(wait_for_file(dir + "/started"));
        scope.cancel();
      });
      EXPECT_TRUE(scope.cancelled_caught());
      EXPECT_TRUE(wait_for_file(dir + "/cancelled"));
      EXPECT_EQ(portal.run<int>("add", 2, 2), 4);
    });
  });
}

TEST_F(ActorContextTest, DestroyingTheHandleCancelsTheRemoteTask) {
  const std::string dir = make_temp_dir();
  trellis::run([&] {
    open_actor_nursery([&](ActorNursery& an) {
      Portal& portal = an.start_actor("sleeper");
      {
        ContextHandle ctx = portal.open_context("never_opens", dir);
        EXPECT_EQ(ctx->first<int>(), 0);
      }
      EXPECT_TRUE(wait_for_file(dir + "/cancelled"));
    });
  });
}

TEST_F(ActorContextTest, ContextFunctionAndPlainRunDoNotMix) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("strict");
      try {
        portal.run<int>("echo_stream", 1);
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "trellis::actor::ArgumentError");
        EXPECT_NE(e.message().find("open_context"), std::string::npos) << e.message();
      }
      ContextHandle ctx = portal.open_context("add", 1, 2);  // no started(): first() says so
      EXPECT_THROW(ctx->first<int>(), EndOfChannel);
      EXPECT_EQ(ctx.result<int>(), 3);
    });
  });
}

TEST_F(ActorContextTest, ContextsFailWhenTheActorDies) {
  trellis::run([] {
    open_actor_nursery({.cancel_grace = std::chrono::milliseconds(500)}, [](ActorNursery& an) {
      Portal& portal = an.start_actor("mortal");
      ContextHandle ctx = portal.open_context("echo_stream", 1);
      EXPECT_EQ(ctx->first<int>(), 1);
      MsgStream stream = ctx->open_stream();
      ::kill(portal.pid(), SIGKILL);
      EXPECT_THROW(stream.receive<int>(), BrokenActorError);
      EXPECT_THROW(ctx.result<int>(), BrokenActorError);
    });
  });
}

}  // namespace
}  // namespace trellis::actor
