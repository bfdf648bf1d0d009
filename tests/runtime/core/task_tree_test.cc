// Tests of task introspection: names, the root task, parent and child nurseries, dumps.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
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

// ---- tasks spawned but not yet run ---------------------------------------------------------
// start_soon() is not a checkpoint, so in a spawn storm every task exists before the first one
// runs. Such a task holds only what it needs before its first step (task.h): everything
// observable about it must still be there.

void spawned_function() {}

TEST(TaskTree, ATaskThatHasNotRunYetIsFullyIntrospectable) {
  std::string dump;
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "named"}, [] {});
      n.start_soon([] {});
      n.start_soon(&spawned_function);
      const std::vector<lowlevel::Task*> children = n.child_tasks();
      ASSERT_EQ(children.size(), 3u);
      EXPECT_EQ(children[0]->name(), "named");
      EXPECT_NE(children[1]->name().find("ATaskThatHasNotRunYetIsFullyIntrospectable"),
                std::string::npos)
          << children[1]->name();
      EXPECT_FALSE(children[2]->name().empty());
      for (lowlevel::Task* child : children) {
        EXPECT_EQ(child->parent_nursery(), &n);
        EXPECT_EQ(child->eventual_parent_nursery(), nullptr);
        EXPECT_TRUE(child->child_nurseries().empty());
        EXPECT_TRUE(child->waiting_on().empty());
        EXPECT_FALSE(child->parked());
        EXPECT_EQ(child->cancel_points(), 0u);
        EXPECT_EQ(child->schedule_points(), 0u);
        const std::vector<CancelScope*> scopes = child->enclosing_cancel_scopes();
        ASSERT_FALSE(scopes.empty());
        EXPECT_EQ(scopes.front(), &n.cancel_scope());
      }
      EXPECT_LT(children[0]->id(), children[1]->id());
      EXPECT_LT(children[1]->id(), children[2]->id());
      EXPECT_EQ(lowlevel::current_statistics().tasks_living, 5u);  // root, main and three
      dump = lowlevel::dump_task_tree();
    });
  });
  EXPECT_NE(dump.find("nursery (3 children)"), std::string::npos) << dump;
  EXPECT_NE(dump.find("named #"), std::string::npos) << dump;
  std::size_t runnable = 0;
  for (std::size_t at = dump.find("[runnable]"); at != std::string::npos;
       at = dump.find("[runnable]", at + 1)) {
    ++runnable;
  }
  EXPECT_EQ(runnable, 3u) << dump;
}

// A nursery's children that have run are on its list (in first-step order) and those that
// have not are only counted (task.h): listed together, they come in spawn order, and the
// count covers both, as a task moves from one kind to the other and exits.
TEST(TaskTree, ChildrenThatHaveRunAndChildrenThatHaveNotAreListedTogether) {
  run([&] {
    Event go;
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "first"}, [&] { go.wait(); });
      n.start_soon(SpawnOptions{.name = "second"}, [&] { go.wait(); });
      lowlevel::wait_all_tasks_blocked();  // both have run and are parked
      n.start_soon(SpawnOptions{.name = "third"}, [] {});
      n.start_soon(SpawnOptions{.name = "fourth"}, [&] { go.wait(); });
      std::vector<std::string> names;
      for (lowlevel::Task* child : n.child_tasks()) names.push_back(child->name());
      EXPECT_EQ(names, (std::vector<std::string>{"first", "second", "third", "fourth"}));
      EXPECT_EQ(n.child_count(), 4u);
      EXPECT_TRUE(n.child_tasks()[1]->parked());
      EXPECT_FALSE(n.child_tasks()[2]->parked());
      lowlevel::wait_all_tasks_blocked();  // third has exited, fourth is parked
      names.clear();
      for (lowlevel::Task* child : n.child_tasks()) names.push_back(child->name());
      EXPECT_EQ(names, (std::vector<std::string>{"first", "second", "fourth"}));
      EXPECT_EQ(n.child_count(), 3u);
      EXPECT_EQ(lowlevel::current_statistics().tasks_living, 5u);  // root, main and three
      go.set();
    });
  });
}

// An instrument sees each task at its spawn, before it has run.
struct SpawnSpy final : Instrument {
  std::vector<Nursery*> eventual_parents;
  std::vector<std::string> names;
  void task_spawned(lowlevel::Task& task) override {
    eventual_parents.push_back(task.eventual_parent_nursery());
    names.push_back(task.name());
    EXPECT_EQ(task.schedule_points(), 0u);
    EXPECT_TRUE(task.waiting_on().empty());
  }
};

TEST(TaskTree, AStartedTaskThatHasNotRunYetHasItsEventualParent) {
  SpawnSpy spy;
  Nursery* target_nursery = nullptr;
  run(
      [&] {
        open_nursery([&](Nursery& target) {
          target_nursery = &target;
          target.start(SpawnOptions{.name = "server"},
                       [](TaskStatus<>& status) { status.started(); });
        });
      },
      {.instruments = {&spy}});
  ASSERT_EQ(spy.names.size(), 3u);  // root, main, server
  EXPECT_EQ(spy.names[2], "server");
  EXPECT_EQ(spy.eventual_parents[0], nullptr);
  EXPECT_EQ(spy.eventual_parents[1], nullptr);
  EXPECT_EQ(spy.eventual_parents[2], target_nursery);
}

TEST(TaskTree, TasksCancelledBeforeTheirFirstStepRunAndSeeCancelledAtTheirFirstCheckpoint) {
  constexpr int kTasks = 1000;
  int started = 0;
  int passed_checkpoint = 0;
  run([&] {
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < kTasks; ++i) {
        n.start_soon([&] {
          ++started;
          checkpoint();
          ++passed_checkpoint;
        });
      }
      n.cancel_scope().cancel();
    });
  });
  EXPECT_EQ(started, kTasks);
  EXPECT_EQ(passed_checkpoint, 0);
}

TEST(TaskTree, ErrorsOfTasksThatHadNotRunWhenTheNurseryWasCancelledAreAllCollected) {
  constexpr int kTasks = 1000;
  std::size_t errors = 0;
  run([&] {
    try {
      open_nursery([&](Nursery& n) {
        for (int i = 0; i < kTasks; ++i) {
          n.start_soon([i] {
            // Fails before any checkpoint: the nursery's cancellation (from the first failure)
            // cannot stop it.
            if (i % 100 == 0) throw std::runtime_error("task " + std::to_string(i));
            checkpoint();
          });
        }
      });
    } catch (const ExceptionGroup& group) {
      errors = group.exceptions().size();
    }
  });
  EXPECT_EQ(errors, static_cast<std::size_t>(kTasks / 100));
}

TEST(TaskTree, ATaskInheritsTheTaskLocalsOfItsSpawnNotOfItsFirstStep) {
  static TaskLocal<int> value(0);
  std::vector<int> seen;
  run([&] {
    open_nursery([&](Nursery& n) {
      value.set(1);
      n.start_soon([&] { seen.push_back(value.get()); });
      value.set(2);
      n.start_soon([&] { seen.push_back(value.get()); });
      value.reset();
    });
  });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

// What a spawn storm pays per task before any runs (task.h, task_allocator.cc): a task whose
// callable holds one reference takes 48 bytes (it was ~450 when every task carried its fiber,
// counters and parking state from its spawn, 112 while it carried its list links, cancel
// status, stack size, name and task-locals each in a field of its own).
TEST(TaskTree, ATaskThatHasNotRunYetIsSmall) {
  int counter = 0;
  auto body = [&counter] { ++counter; };
  using Fn = decltype(body);
  using Task = internal::TaskWithBody<internal::BoundCall<Fn>, internal::SpawnedName<Fn>>;
  EXPECT_LE(sizeof(Task), 48u);
  EXPECT_LE(sizeof(lowlevel::Task), 40u);
}

}  // namespace
}  // namespace trellis
