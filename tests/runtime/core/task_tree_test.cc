// Tests of task introspection: names, the root task, parent and child nurseries, dumps.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

void named_worker(std::string* name_out) {
  *name_out = lowlevel::current_task().name();
}

TEST(TaskTree, ExplicitNameWins) {
  std::string name;
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "fetcher"},
                   [&] { name = lowlevel::current_task().name(); });
    });
  });
  EXPECT_EQ(name, "fetcher");
}

TEST(TaskTree, LambdaNameComesFromItsEnclosingFunction) {
  std::string name;
  run([&] {
    open_nursery(
        [&](Nursery& n) { n.start_soon([&] { name = lowlevel::current_task().name(); }); });
  });
  EXPECT_NE(name.find("TaskTree_LambdaNameComesFromItsEnclosingFunction"), std::string::npos)
      << name;
  EXPECT_EQ(name.find("operator()"), std::string::npos) << name;
}

TEST(TaskTree, FunctionPointerTaskIsNamedAfterTheFunctionWhenExported) {
  std::string name;
  run([&] { open_nursery([&](Nursery& n) { n.start_soon(&named_worker, &name); }); });
  // With symbols exported (-rdynamic) the name is the function's; otherwise its type.
  EXPECT_TRUE(name.find("named_worker") != std::string::npos ||
              name.find("(*)(std::") != std::string::npos)
      << name;
}

TEST(TaskTree, RootIsNotMainAndParentsLinkUp) {
  run([] {
    lowlevel::Task& main_task = lowlevel::current_task();
    lowlevel::Task& root = lowlevel::current_root_task();
    EXPECT_NE(&main_task, &root);
    EXPECT_EQ(root.name(), "<init>");
    EXPECT_EQ(root.parent_nursery(), nullptr);
    ASSERT_NE(main_task.parent_nursery(), nullptr);
    EXPECT_EQ(&main_task.parent_nursery()->parent_task(), &root);
    EXPECT_TRUE(main_task.child_nurseries().empty());
    open_nursery([&](Nursery& outer) {
      open_nursery([&](Nursery& inner) {
        ASSERT_EQ(main_task.child_nurseries().size(), 2u);
        EXPECT_EQ(main_task.child_nurseries()[0], &outer);
        EXPECT_EQ(main_task.child_nurseries()[1], &inner);
        inner.start_soon([&] {
          EXPECT_EQ(lowlevel::current_task().parent_nursery(), &inner);
          EXPECT_EQ(inner.child_count(), 1u);
        });
      });
    });
    EXPECT_TRUE(main_task.child_nurseries().empty());
  });
}

TEST(TaskTree, StartedTaskHasEventualParentUntilStarted) {
  run([] {
    open_nursery([](Nursery& target) {
      target.start([&](TaskStatus<>& status) {
        lowlevel::Task& self = lowlevel::current_task();
        EXPECT_EQ(self.eventual_parent_nursery(), &target);
        EXPECT_NE(self.parent_nursery(), &target);
        status.started();
        EXPECT_EQ(self.eventual_parent_nursery(), nullptr);
        EXPECT_EQ(self.parent_nursery(), &target);
      });
    });
  });
}

TEST(TaskTree, DumpShowsNamesNurseriesAndWaits) {
  std::string dump;
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon(SpawnOptions{.name = "sleeper"}, [] { sleep(std::chrono::seconds(5)); });
          fakes::wait_all_tasks_blocked();
          dump = lowlevel::dump_task_tree();
        });
      },
      {.clock = &clock});
  EXPECT_NE(dump.find("<init> #0"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[running]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("sleeper #"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[waiting on sleep]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("nursery (1 children)"), std::string::npos) << dump;
}

TEST(TaskTree, IdsAreSpawnOrder) {
  std::vector<std::uint64_t> ids;
  run(
      [&] {
        ids.push_back(lowlevel::current_task().id());
        open_nursery([&](Nursery& n) {
          for (int i = 0; i < 3; ++i)
            n.start_soon([&] { ids.push_back(lowlevel::current_task().id()); });
        });
      },
      {.schedule_seed = 7});
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 1u);  // 0 is the root task
  std::sort(ids.begin() + 1, ids.end());
  EXPECT_EQ(ids[1], 2u);
  EXPECT_EQ(ids[3], 4u);
}

}  // namespace
}  // namespace trellis
