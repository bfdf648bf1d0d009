// Actor nurseries, portals, error relay and cancellation across real processes (ports of
// tractor's test semantics: test_spawning, test_local/test_remote errors, test_cancellation).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"

namespace trellis::actor {
namespace {

using namespace std::chrono_literals;
using testing::live_children;
using testing::make_temp_dir;
using testing::wait_for_file;
using testing::wait_until_gone;

// The only leaf of an error (unwrapping single-exception groups), as E; fails the test if it
// is anything else.
template <class E>
E only_leaf(std::exception_ptr error) {
  for (;;) {
    try {
      std::rethrow_exception(error);
    } catch (const ExceptionGroup& group) {
      if (group.exceptions().size() != 1) throw;
      error = group.exceptions().front();
    } catch (const E& e) {
      return e;
    }
  }
}

class ActorTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(live_children(), std::vector<int>{}) << "a child actor outlived its nursery";
  }
  ActorNurseryOptions quick{.cancel_grace = 500ms};
};

TEST_F(ActorTest, PortalRunReturnsResults) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("adder");
      EXPECT_EQ(portal.actor_name(), "adder");
      EXPECT_NE(portal.pid(), ::getpid());
      EXPECT_EQ(portal.run<int>("add", 2, 3), 5);
      EXPECT_EQ(portal.run<std::string>("greet", std::string("root")), "hello root from adder");
      EXPECT_EQ(portal.run<int>("my_pid"), portal.pid());
      portal.run<void>("add", 1, 1);  // a result may be ignored
    });
  });
}

TEST_F(ActorTest, NurseryReturnsTheBodysValueAndReapsEveryChild) {
  std::vector<int> pids;
  const int sum = trellis::run([&] {
    return open_actor_nursery([&](ActorNursery& an) {
      int total = 0;
      for (int i = 0; i < 3; ++i) {
        Portal& portal = an.start_actor("a" + std::to_string(i));
        pids.push_back(portal.pid());
        total += portal.run<int>("add", i, 10);
      }
      return total;
    });
  });
  EXPECT_EQ(sum, 33);
  for (int pid : pids) EXPECT_TRUE(testing::process_gone(pid)) << pid;
}

TEST_F(ActorTest, ConcurrentCallsOnOnePortal) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("busy");
      std::vector<int> results(20);
      open_nursery([&](Nursery& n) {
        for (int i = 0; i < 20; ++i) {
          n.start_soon([&, i] { results[i] = portal.run<int>("add", i, i); });
        }
      });
      for (int i = 0; i < 20; ++i) EXPECT_EQ(results[i], 2 * i);
    });
  });
}

TEST_F(ActorTest, RemoteErrorIsRelayedAndTheActorKeepsServing) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("failer");
      try {
        portal.run<void>("fail", std::string("bad input"));
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "std::invalid_argument");
        EXPECT_EQ(e.message(), "bad input");
        EXPECT_EQ(e.actor_name(), "failer");
        EXPECT_TRUE(e.relayed_through().empty());
        EXPECT_NE(std::string(e.what()).find("bad input"), std::string::npos) << e.what();
      }
      EXPECT_EQ(portal.run<int>("add", 1, 2), 3);
    });
  });
}

TEST_F(ActorTest, UnknownFunctionAndWrongArgumentsAreRemoteErrors) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& portal = an.start_actor("strict");
      try {
        portal.run<int>("no_such_function");
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "trellis::actor::UnknownFunctionError");
        EXPECT_NE(e.message().find("no_such_function"), std::string::npos) << e.message();
      }
      try {
        portal.run<int>("add", std::string("one"), 2);
        ADD_FAILURE() << "no error";
      } catch (const RemoteActorError& e) {
        EXPECT_EQ(e.type_name(), "trellis::actor::ArgumentError");
      }
      EXPECT_EQ(portal.run<int>("add", 20, 22), 42);
    });
  });
}

TEST_F(ActorTest, ErrorInTheBodyPropagatesAfterTheChildrenAreStopped) {
  int pid = 0;
  try {
    trellis::run([&] {
      open_actor_nursery(quick, [&](ActorNursery& an) {
        pid = an.start_actor("remote").pid();
        throw std::runtime_error("local failure");
      });
    });
    ADD_FAILURE() << "no error";
  } catch (...) {
    EXPECT_STREQ(only_leaf<std::runtime_error>(std::current_exception()).what(), "local failure");
  }
  EXPECT_TRUE(testing::process_gone(pid));
}

TEST_F(ActorTest, RunInActorCollectsResults) {
  trellis::run([] {
    open_actor_nursery([](ActorNursery& an) {
      Portal& one = an.run_in_actor("one", "add", 1, 2);
      Portal& two = an.run_in_actor("two", "greet", std::string("you"));
      EXPECT_EQ(one.result<int>(), 3);
      EXPECT_EQ(two.result<std::string>(), "hello you from two");
      EXPECT_EQ(one.result<int>(), 3);  // again
    });
  });
}

TEST_F(ActorTest, RunInActorErrorIsAnErrorOfTheNursery) {
  std::vector<int> pids;
  try {
    trellis::run([&] {
      open_actor_nursery(quick, [&](ActorNursery& an) {
        pids.push_back(an.start_actor("bystander").pid());
        pids.push_back(an.run_in_actor("doomed", "fail", std::string("boom")).pid());
        sleep_forever();  // cancelled by the failure
      });
    });
    ADD_FAILURE() << "no error";
  } catch (...) {
    const RemoteActorError e = only_leaf<RemoteActorError>(std::current_exception());
    EXPECT_EQ(e.actor_name(), "doomed");
    EXPECT_EQ(e.message(), "boom");
  }
  for (int pid : pids) EXPECT_TRUE(testing::process_gone(pid)) << pid;
}

TEST_F(ActorTest, ErrorFromAGrandchildReachesTheRoot) {
  try {
    trellis::run([] {
      open_actor_nursery([](ActorNursery& an) {
        an.start_actor("child").run<void>("spawn_and_fail", std::string("deep failure"));
      });
    });
    ADD_FAILURE() << "no error";
  } catch (...) {
    const RemoteActorError e = only_leaf<RemoteActorError>(std::current_exception());
    EXPECT_EQ(e.type_name(), "std::invalid_argument");
    EXPECT_EQ(e.message(), "deep failure");
    EXPECT_EQ(e.actor_name(), "grandchild");
    EXPECT_EQ(e.relayed_through(), std::vector<std::string>{"child"});
  }
}

TEST_F(ActorTest, CancellingTheCallerCancelsTheRemoteTask) {
  const std::string dir = make_temp_dir();
  trellis::run([&] {
    open_actor_nursery([&](ActorNursery& an) {
      Portal& portal = an.start_actor("sleeper");
      CancelScope scope;
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { scope.run([&] { portal.run<void>("sleep_marking", dir); }); });
        ASSERT_TRUE(wait_for_file(dir + "/started"));
        scope.cancel();
      });
      EXPECT_TRUE(scope.cancelled_caught());
      EXPECT_TRUE(wait_for_file(dir + "/cancelled")) << "the remote task was not cancelled";
      EXPECT_EQ(portal.run<int>("add", 2, 2), 4);  // the actor still serves
      portal.cancel_actor();
      EXPECT_EQ(portal.returncode(), 0);
    });
  });
}

TEST_F(ActorTest, CancellingTheActorNurseryIsNotAnErrorAndStopsEveryChild) {
  std::vector<int> pids;
  std::vector<std::string> dirs;
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      for (int i = 0; i < 3; ++i) {
        dirs.push_back(make_temp_dir());
        pids.push_back(
            an.run_in_actor("s" + std::to_string(i), "sleep_marking", dirs.back()).pid());
      }
      pids.push_back(an.start_actor("idle").pid());
      for (const std::string& dir : dirs) ASSERT_TRUE(wait_for_file(dir + "/started"));
      an.cancel_scope().cancel();
      sleep_forever();
    });
  });
  for (int pid : pids) EXPECT_TRUE(testing::process_gone(pid)) << pid;
  // The cancel request reached every remote task (not just a signal).
  for (const std::string& dir : dirs) EXPECT_EQ(::access((dir + "/cancelled").c_str(), F_OK), 0);
}

TEST_F(ActorTest, CancellationOfADeepTree) {
  const std::string dir = make_temp_dir();
  std::vector<int> pids;
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      Portal& top = an.start_actor("level3");
      pids.push_back(top.pid());
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { top.run<void>("spawn_and_sleep", dir, 2); });
        ASSERT_TRUE(wait_for_file(dir + "/pid1"));
        n.cancel_scope().cancel();
      });
      pids.push_back(std::stoi(testing::read_file(dir + "/pid2")));
      pids.push_back(std::stoi(testing::read_file(dir + "/pid1")));
      an.cancel_scope().cancel();
    });
    for (int pid : pids) EXPECT_TRUE(wait_until_gone(pid)) << pid;
  });
}

TEST_F(ActorTest, ChildIgnoringTheCancelRequestIsTerminated) {
  for (bool ignore_sigterm : {false, true}) {
    const std::string dir = make_temp_dir();
    int pid = 0;
    trellis::run([&] {
      open_actor_nursery(quick, [&](ActorNursery& an) {
        Portal& stubborn = an.run_in_actor("stubborn", "ignore_cancel", dir, ignore_sigterm);
        pid = stubborn.pid();
        ASSERT_TRUE(wait_for_file(dir + "/started"));
        an.cancel_scope().cancel();
      });
    });
    EXPECT_TRUE(testing::process_gone(pid)) << "ignore_sigterm " << ignore_sigterm;
  }
}

TEST_F(ActorTest, CancelActorStopsOneChild) {
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      Portal& doomed = an.start_actor("doomed");
      Portal& other = an.start_actor("other");
      doomed.cancel_actor();
      EXPECT_TRUE(testing::process_gone(doomed.pid()));
      EXPECT_EQ(doomed.returncode(), 0) << "the cancel request did not stop it cleanly";
      EXPECT_THROW(doomed.run<int>("add", 1, 1), BrokenActorError);
      doomed.cancel_actor();  // idempotent
      EXPECT_EQ(other.run<int>("add", 1, 1), 2);
    });
  });
}

TEST_F(ActorTest, ChildKilledBySignalIsABrokenActor) {
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      Portal& portal = an.start_actor("victim");
      try {
        portal.run<void>("crash");
        ADD_FAILURE() << "no error";
      } catch (const BrokenActorError& e) {
        EXPECT_NE(std::string(e.what()).find("SIGKILL"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("victim"), std::string::npos) << e.what();
      }
      EXPECT_THROW(portal.run<int>("add", 1, 1), BrokenActorError);
    });
  });
}

TEST_F(ActorTest, ChildWhosParentDiedExitsByItself) {
  const std::string dir = make_temp_dir();
  trellis::run([&] {
    int grandchild = 0;
    open_actor_nursery(quick, [&](ActorNursery& an) {
      Portal& parent = an.start_actor("parent");
      open_nursery([&](Nursery& n) {
        n.start_soon(
            [&] { EXPECT_THROW(parent.run<void>("spawn_and_sleep", dir, 1), BrokenActorError); });
        ASSERT_TRUE(wait_for_file(dir + "/pid1"));
        grandchild = std::stoi(testing::read_file(dir + "/pid1"));
        ::kill(parent.pid(), SIGKILL);  // no chance to stop its child
      });
    });
    EXPECT_TRUE(wait_until_gone(grandchild)) << "an orphaned actor kept running";
  });
}

TEST_F(ActorTest, ChildThatNeverConnectsIsReported) {
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      try {
        an.start_actor("not_an_actor", ActorOptions{.executable = "/bin/true"});
        ADD_FAILURE() << "no error";
      } catch (const BrokenActorError& e) {
        EXPECT_NE(std::string(e.what()).find("before it connected"), std::string::npos) << e.what();
      }
    });
  });
}

TEST_F(ActorTest, ChildThatHangsBeforeConnectingIsKilledAfterTheStartTimeout) {
  const std::string script = make_temp_dir() + "/hang.sh";
  testing::write_file(script, "#!/bin/sh\nexec sleep 1000\n");
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  trellis::run([&] {
    open_actor_nursery({.cancel_grace = 500ms, .start_timeout = 300ms}, [&](ActorNursery& an) {
      try {
        an.start_actor("hung", ActorOptions{.executable = script});
        ADD_FAILURE() << "no error";
      } catch (const BrokenActorError& e) {
        EXPECT_NE(std::string(e.what()).find("did not connect within 300 ms"), std::string::npos)
            << e.what();
      }
      EXPECT_EQ(an.start_actor("fine").run<int>("add", 1, 1), 2);
    });
  });
}

// A child that breaks the protocol: an error on that channel naming the problem; the child
// is killed and reaped; the parent and its other children keep running.
class MisbehavingChildTest : public ActorTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(MisbehavingChildTest, IsAnErrorOnItsChannelOnly) {
  const std::string how = GetParam();
  trellis::run([&] {
    open_actor_nursery(quick, [&](ActorNursery& an) {
      Portal& good = an.start_actor("good");
      ::setenv("TRELLIS_ACTOR_TEST_MISBEHAVE", how.c_str(), 1);
      Portal& bad = an.start_actor("bad");
      ::unsetenv("TRELLIS_ACTOR_TEST_MISBEHAVE");
      try {
        bad.run<int>("add", 1, 2);
        ADD_FAILURE() << "no error";
      } catch (const BrokenActorError& e) {
        const std::string what = e.what();
        const char* expected = how == "garbage"        ? "bad frame magic"
                               : how == "truncated"    ? "inside a frame"
                               : how == "unknown_kind" ? "unknown frame kind 42"
                                                       : "payload is not valid msgpack";
        EXPECT_NE(what.find(expected), std::string::npos) << what;
        EXPECT_NE(what.find("'bad'"), std::string::npos) << what;
      }
      EXPECT_TRUE(wait_until_gone(bad.pid()));
      EXPECT_EQ(good.run<int>("add", 1, 2), 3);
    });
  });
}

INSTANTIATE_TEST_SUITE_P(Ways, MisbehavingChildTest,
                         ::testing::Values("garbage", "truncated", "unknown_kind", "bad_payload"));

}  // namespace
}  // namespace trellis::actor
