// RemoteActorError carries the remote task tree (tractor's boxed error): which actor ran
// which function, from the failing task up through every relaying actor, readable in what().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actor_functions.h"
#include "tree_functions.h"
#include "trellis/actor.h"
#include "trellis/trellis.h"

namespace trellis::actor {
namespace {

using Task = RemoteActorError::Task;

class ActorRemoteErrorTreeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(testing::live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
};

TEST_F(ActorRemoteErrorTreeTest, AGreatGrandchildsErrorNamesEveryTaskOnItsWay) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      try {
        an.start_actor("branch").run<void>("tree.fail_deep", 2, std::string("boom"));
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "std::domain_error");
        EXPECT_EQ(e.actor_name(), "deep1");
        EXPECT_EQ(e.relayed_through(), (std::vector<std::string>{"deep2", "branch"}));
        EXPECT_EQ(e.remote_tree(), (std::vector<Task>{{"deep1", "tree.fail_deep"},
                                                      {"deep2", "tree.fail_deep"},
                                                      {"branch", "tree.fail_deep"}}));
        const std::string what = e.what();
        EXPECT_NE(what.find("std::domain_error: boom (raised in actor 'deep1', relayed by "
                            "'deep2', relayed by 'branch')"),
                  std::string::npos)
            << what;
        EXPECT_NE(what.find("remote task tree (outermost first):\n"
                            "  actor 'branch' running 'tree.fail_deep'\n"
                            "    actor 'deep2' running 'tree.fail_deep'\n"
                            "      actor 'deep1' running 'tree.fail_deep': raised "
                            "std::domain_error: boom"),
                  std::string::npos)
            << what;
      }
    });
  });
}

TEST_F(ActorRemoteErrorTreeTest, ADirectErrorAndAContextErrorNameTheirTask) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("leaf");
      try {
        portal.run<void>("fail", std::string("direct"));
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.remote_tree(), (std::vector<Task>{{"leaf", "fail"}}));
        EXPECT_NE(std::string(e.what()).find("actor 'leaf' running 'fail': raised"),
                  std::string::npos);
      }
      try {
        portal.run<void>("no_such_function");
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "trellis::actor::UnknownFunctionError");
        EXPECT_EQ(e.remote_tree(), (std::vector<Task>{{"leaf", "no_such_function"}}));
      }
      ContextHandle ctx = portal.open_context("context_fails");
      (void)ctx->first<int>();
      try {
        ctx.result<void>();
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.remote_tree(), (std::vector<Task>{{"leaf", "context_fails"}}));
      }
    });
  });
}

}  // namespace
}  // namespace trellis::actor
