// Ports of the semantics of Trio's contextvars tests (src/trio/_tests/test_contextvars.py and
// test_contextvar_* in src/trio/_core/_tests/test_run.py) to TaskLocal<T>: a task starts with
// a copy of its spawner's values, and set() never leaks upwards or sideways.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

template <class F>
decltype(auto) run_autojump(F&& main) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  return run(std::forward<F>(main), RunOptions{.clock = &clock, .schedule_seed = 1});
}

// test_contextvars_default: a child sees the value its parent set before spawning it.
TEST(TaskLocal, ChildInheritsSpawnersValue) {
  TaskLocal<std::string> local{"default"};
  std::vector<std::string> record;
  run_autojump([&] {
    local.set("main");
    open_nursery([&](Nursery& n) { n.start_soon([&] { record.push_back(local.get()); }); });
  });
  EXPECT_EQ(record, std::vector<std::string>{"main"});
}

// test_contextvars_set: set() in a child does not change the parent's value.
TEST(TaskLocal, ChildSetDoesNotLeakToParent) {
  TaskLocal<std::string> local{"default"};
  std::vector<std::string> record;
  std::string parent_after;
  run_autojump([&] {
    local.set("main");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        local.set("child");
        record.push_back(local.get());
      });
    });
    parent_after = local.get();
  });
  EXPECT_EQ(record, std::vector<std::string>{"child"});
  EXPECT_EQ(parent_after, "main");
}

// test_contextvar_multitask: the copy is taken at spawn time; later changes by the parent are
// seen only by children spawned after them, and a sibling's set() is invisible.
TEST(TaskLocal, CopyIsTakenAtSpawnTime) {
  TaskLocal<std::string> local{"hmmm"};
  std::vector<std::string> record;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        record.push_back("t1 sees " + local.get());
        local.set("hmmmm");
        record.push_back("t1 set " + local.get());
      });
      fakes::wait_all_tasks_blocked();
      record.push_back("parent sees " + local.get());
      local.set("parent value");
      n.start_soon([&] { record.push_back("t2 sees " + local.get()); });
      local.set("changed after spawning t2");
      fakes::wait_all_tasks_blocked();
    });
  });
  EXPECT_EQ(record, (std::vector<std::string>{"t1 sees hmmm", "t1 set hmmmm", "parent sees hmmm",
                                              "t2 sees parent value"}));
}

// test_contextvar_support: run()'s tasks start from the calling thread's values, and what
// they set stays inside the run.
TEST(TaskLocal, RunStartsFromTheCallingThreadsValues) {
  TaskLocal<std::string> local{"default"};
  EXPECT_EQ(local.get(), "default");
  local.set("before");
  std::string inside;
  run_autojump([&] {
    inside = local.get();
    local.set("after");
    EXPECT_EQ(local.get(), "after");
  });
  EXPECT_EQ(inside, "before");
  EXPECT_EQ(local.get(), "before");
  local.reset();
  EXPECT_EQ(local.get(), "default");
}

// Nursery::start(): the started task is spawned by the caller of start(), so it inherits the
// caller's values, and keeps them when it moves to the target nursery.
TEST(TaskLocal, StartInheritsFromTheCallerOfStart) {
  TaskLocal<int> local{0};
  int seen_before_started = -1;
  int seen_after_started = -1;
  run_autojump([&] {
    open_nursery([&](Nursery& outer) {
      local.set(7);
      outer.start([&](TaskStatus<>& status) {
        seen_before_started = local.get();
        status.started();
        sleep(1s);
        seen_after_started = local.get();
      });
      local.set(8);
    });
  });
  EXPECT_EQ(seen_before_started, 7);
  EXPECT_EQ(seen_after_started, 7);
}

// Grandchildren inherit through the chain; siblings are isolated from each other.
TEST(TaskLocal, DeepTreeIsolation) {
  TaskLocal<int> depth{0};
  std::vector<int> leaves;
  run_autojump([&] {
    std::function<void(int)> grow = [&](int level) {
      EXPECT_EQ(depth.get(), level);
      depth.set(level + 1);
      if (level == 3) {
        leaves.push_back(depth.get());
        return;
      }
      open_nursery([&](Nursery& n) {
        n.start_soon(grow, level + 1);
        n.start_soon(grow, level + 1);
      });
      EXPECT_EQ(depth.get(), level + 1);
    };
    grow(0);
  });
  EXPECT_EQ(leaves, std::vector<int>(8, 4));
}

// Several task-locals are independent, and a TaskLocal created where a destroyed one lived
// does not see its values.
TEST(TaskLocal, IndependentKeys) {
  run_autojump([&] {
    TaskLocal<int> a{1};
    TaskLocal<int> b{2};
    a.set(10);
    EXPECT_EQ(a.get(), 10);
    EXPECT_EQ(b.get(), 2);
    b.set(20);
    a.reset();
    EXPECT_EQ(a.get(), 1);
    EXPECT_EQ(b.get(), 20);
    for (int i = 0; i < 3; ++i) {
      auto fresh = std::make_unique<TaskLocal<int>>(-1);
      EXPECT_EQ(fresh->get(), -1);
      fresh->set(i);
    }
  });
}

// scoped_set restores the previous value (set or unset) when the guard ends, also when the
// scope is left by cancellation.
TEST(TaskLocal, ScopedSetRestores) {
  TaskLocal<std::string> local{"default"};
  run_autojump([&] {
    {
      auto guard = local.scoped_set("outer");
      EXPECT_EQ(local.get(), "outer");
      {
        auto inner = local.scoped_set("inner");
        EXPECT_EQ(local.get(), "inner");
      }
      EXPECT_EQ(local.get(), "outer");
    }
    EXPECT_EQ(local.get(), "default");
    move_on_after(1s, [&] {
      auto guard = local.scoped_set("cancelled");
      sleep_forever();
    });
    EXPECT_EQ(local.get(), "default");
  });
}

// Move-only values work; get() hands out a reference to the stored value.
TEST(TaskLocal, MoveOnlyValues) {
  TaskLocal<std::unique_ptr<int>> local{nullptr};
  run_autojump([&] {
    EXPECT_EQ(local.get(), nullptr);
    local.set(std::make_unique<int>(5));
    ASSERT_NE(local.get(), nullptr);
    EXPECT_EQ(*local.get(), 5);
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        ASSERT_NE(local.get(), nullptr);
        EXPECT_EQ(*local.get(), 5);  // shared, not copied: unique_ptr needs no copy
      });
    });
  });
}

}  // namespace
}  // namespace trellis
