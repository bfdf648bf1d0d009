// Ports of the semantics of Trio's src/trio/_core/_tests/test_run.py: run(), nurseries, cancel
// scopes (shielding, nesting, deadlines, cancel_called / cancelled_caught), Nursery::start()
// and TaskStatus, strict and loose exception groups, the task tree, checkpoints and the misuse
// errors.
//
// Method: each TEST re-states one behaviour that a Trio test checks, written from scratch
// against the Trellis API (blocking calls on fibers instead of await). Runs use a MockClock
// with autojump threshold 0 (Trio's autojump_clock fixture), so every virtual time asserted
// is exact, and a FIFO batch policy, so interleavings are deterministic. Python-only concerns
// (coroutines, gc, contextvars, KeyboardInterrupt, guest mode, system tasks) are not ported.
// A failing TEST here is a deviation of Trellis from Trio, not a test to adjust.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

// A point in virtual time (a MockClock starts at 0).
Time at(Duration d) {
  return Time(d);
}

// Stand-ins for the Python exception types the Trio tests raise.
class KeyError : public std::runtime_error {
 public:
  explicit KeyError(const std::string& what = "KeyError") : std::runtime_error(what) {}
};
class ValueError : public std::runtime_error {
 public:
  explicit ValueError(const std::string& what = "ValueError") : std::runtime_error(what) {}
};

// The exception held by `error` if it is an E, else nullptr. Valid while `error` lives.
template <class E>
const E* as(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E& e) {
    return &e;
  } catch (...) {
    return nullptr;
  }
}

// Runs f and returns what it threw (nullptr if nothing).
template <class F>
std::exception_ptr capture(F&& f) {
  try {
    f();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

template <class E>
std::size_t count_of(const ExceptionGroup& group) {
  std::size_t n = 0;
  for (const std::exception_ptr& e : group.exceptions()) n += as<E>(e) != nullptr ? 1 : 0;
  return n;
}

void sleep_forever_task() {
  sleep_forever();
}

// ---- run() basics -------------------------------------------------------------------------

// Ports test_run.py::test_basic
TEST(TrioRun, ReturnsTheValueOfMain) {
  EXPECT_EQ(run_autojump([] { return 8; }), 8);
}

// Ports test_run.py::test_basic
TEST(TrioRun, ReturnsTheValueOfMainAfterACheckpoint) {
  EXPECT_EQ(run_autojump([] {
              checkpoint();
              return 1;
            }),
            1);
}

// Ports test_run.py::test_initial_task_error
TEST(TrioRun, ErrorOfMainComesOutUnwrapped) {
  try {
    run_autojump([] { throw ValueError("17"); });
    FAIL() << "run() returned";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "17");
  }
}

// Ports test_run.py::test_run_nesting
TEST(TrioRun, RunInsideRunIsAUsageError) {
  bool inner_ran = false;
  try {
    run_autojump([&] { run([&] { inner_ran = true; }); });
    FAIL() << "nested run() did not throw";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "Attempted to call run() from inside a run()");
  }
  EXPECT_FALSE(inner_ran);
}

// Ports test_run.py::test_out_of_context
TEST(TrioRun, CurrentTaskAndTimeOutsideARunAreUsageErrors) {
  EXPECT_THROW(lowlevel::current_task(), UsageError);
  EXPECT_THROW(current_time(), UsageError);
  EXPECT_FALSE(lowlevel::in_run());
}

// Ports test_run.py::test_current_time
TEST(TrioRun, CurrentTimeAdvancesOnTheRealClock) {
  run([] {
    const Time t1 = current_time();
    std::this_thread::sleep_for(1ms);
    const Time t2 = current_time();
    EXPECT_LT(t1, t2);
  });
}

// Ports test_run.py::test_current_time_with_mock_clock
TEST(TrioRun, CurrentTimeFollowsMockClockJumps) {
  fakes::MockClock clock;
  run(
      [&] {
        const Time start = clock.now();
        EXPECT_EQ(clock.now(), current_time());
        clock.jump(3150ms);
        EXPECT_EQ(start + 3150ms, clock.now());
        EXPECT_EQ(clock.now(), current_time());
      },
      {.clock = &clock});
}

// Ports test_run.py::test_current_clock
TEST(TrioRun, CurrentClockIsTheRunsClock) {
  fakes::MockClock clock;
  run([&] { EXPECT_EQ(&lowlevel::current_clock(), &clock); }, {.clock = &clock});
}

// ---- nurseries and errors -----------------------------------------------------------------

// Ports test_run.py::test_nursery_main_block_error_basic and test_nursery_explicit_exception
TEST(TrioNursery, ErrorOfTheBodyComesOutInAGroup) {
  run_autojump([] {
    try {
      open_nursery([](Nursery&) { throw ValueError("whoops"); });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      const ValueError* e = as<ValueError>(group.exceptions()[0]);
      ASSERT_NE(e, nullptr);
      EXPECT_STREQ(e->what(), "whoops");
    }
  });
}

// Ports test_run.py::test_child_crash_basic
TEST(TrioNursery, ErrorOfAChildComesOutInAGroup) {
  run_autojump([] {
    try {
      open_nursery([](Nursery& n) { n.start_soon([] { throw ValueError("uh oh"); }); });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      const ValueError* e = as<ValueError>(group.exceptions()[0]);
      ASSERT_NE(e, nullptr);
      EXPECT_STREQ(e->what(), "uh oh");
    }
  });
}

void looper(const char* who, std::vector<std::pair<std::string, int>>* record) {
  for (int i = 0; i < 3; ++i) {
    record->emplace_back(who, i);
    checkpoint();
  }
}

// Ports test_run.py::test_basic_interleave (one exact order under a FIFO policy)
TEST(TrioNursery, TwoCheckpointingChildrenAdvanceInLockStep) {
  std::vector<std::pair<std::string, int>> record;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon(looper, "a", &record);
      n.start_soon(looper, "b", &record);
    });
  });
  const std::vector<std::pair<std::string, int>> expected = {{"a", 0}, {"b", 0}, {"a", 1},
                                                             {"b", 1}, {"a", 2}, {"b", 2}};
  EXPECT_EQ(record, expected);
}

// Ports test_run.py::test_basic_interleave (rounds as sets, under Trio's randomized order)
TEST(TrioNursery, LockStepRoundsHoldForEveryScheduleSeed) {
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    std::vector<std::pair<std::string, int>> record;
    run_autojump(
        [&] {
          open_nursery([&](Nursery& n) {
            n.start_soon(looper, "a", &record);
            n.start_soon(looper, "b", &record);
          });
        },
        {.schedule_seed = seed});
    ASSERT_EQ(record.size(), 6u) << "seed " << seed;
    for (int round = 0; round < 3; ++round) {
      const std::set<std::pair<std::string, int>> got = {record[2 * round], record[2 * round + 1]};
      const std::set<std::pair<std::string, int>> want = {{"a", round}, {"b", round}};
      EXPECT_EQ(got, want) << "seed " << seed << " round " << round;
    }
  }
}

// Ports test_run.py::test_task_crash_propagation
TEST(TrioNursery, CrashingChildCancelsItsSiblingAndPropagates) {
  std::vector<std::string> looper_record;
  try {
    run_autojump([&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          try {
            for (;;) checkpoint();
          } catch (const Cancelled&) {
            looper_record.push_back("cancelled");
          }
        });
        n.start_soon([] { throw ValueError("argh"); });
      });
    });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    ASSERT_EQ(group.exceptions().size(), 1u);
    const ValueError* e = as<ValueError>(group.exceptions()[0]);
    ASSERT_NE(e, nullptr);
    EXPECT_STREQ(e->what(), "argh");
  }
  EXPECT_EQ(looper_record, std::vector<std::string>{"cancelled"});
}

// Ports test_run.py::test_main_and_task_both_crash
TEST(TrioNursery, BodyAndChildErrorsAreBothReported) {
  try {
    run_autojump([] {
      open_nursery([](Nursery& n) {
        n.start_soon([] { throw ValueError(); });
        throw KeyError();
      });
    });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    EXPECT_EQ(group.exceptions().size(), 2u);
    EXPECT_EQ(count_of<ValueError>(group), 1u);
    EXPECT_EQ(count_of<KeyError>(group), 1u);
  }
}

// Ports test_run.py::test_two_child_crashes
TEST(TrioNursery, TwoChildErrorsAreBothReported) {
  try {
    run_autojump([] {
      open_nursery([](Nursery& n) {
        n.start_soon([] { throw KeyError(); });
        n.start_soon([] { throw ValueError(); });
      });
    });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    EXPECT_EQ(group.exceptions().size(), 2u);
    EXPECT_EQ(count_of<ValueError>(group), 1u);
    EXPECT_EQ(count_of<KeyError>(group), 1u);
  }
}

// Ports test_run.py::test_child_crash_wakes_parent
TEST(TrioNursery, CrashingChildWakesTheBlockedBody) {
  run_autojump([] {
    try {
      open_nursery([](Nursery& n) {
        n.start_soon([] { throw ValueError("this is a crash"); });
        sleep_forever();
      });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      // The body's Cancelled was stripped by the nursery's own scope.
      ASSERT_EQ(group.exceptions().size(), 1u);
      const ValueError* e = as<ValueError>(group.exceptions()[0]);
      ASSERT_NE(e, nullptr);
      EXPECT_STREQ(e->what(), "this is a crash");
      EXPECT_FALSE(group.contains<Cancelled>());
    }
  });
}

// Ports test_run.py::test_precancelled_task
TEST(TrioNursery, ChildSpawnedIntoACancelledNurseryStillStarts) {
  std::vector<std::string> record;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.cancel_scope().cancel();
      n.start_soon([&] {
        record.push_back("started");
        sleep_forever();
      });
    });
  });
  EXPECT_EQ(record, std::vector<std::string>{"started"});
}

// Ports test_run.py::test_nursery_closure (spawning while the parent waits in the exit)
TEST(TrioNursery, ChildMaySpawnIntoTheNurseryWhileTheBodyWaitsToExit) {
  bool second_ran = false;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        checkpoint();  // by now the body has finished and waits in the exit
        n.start_soon([&] { second_ran = true; });
      });
    });
  });
  EXPECT_TRUE(second_ran);
}

// Ports test_run.py::test_nursery_closure (a closed nursery refuses new children)
TEST(TrioNursery, ClosedNurseryRefusesStartSoon) {
  run_autojump([] {
    Nursery* closed = nullptr;
    bool tried = false;
    open_nursery([&](Nursery& outer) {
      outer.start_soon([&] {
        // Runs during the schedule point of the inner nursery's exit, when that nursery
        // has closed but its block has not returned yet (FIFO policy).
        ASSERT_NE(closed, nullptr);
        EXPECT_TRUE(closed->closed());
        try {
          closed->start_soon([] { ADD_FAILURE() << "child of a closed nursery ran"; });
          ADD_FAILURE() << "start_soon into a closed nursery did not throw";
        } catch (const UsageError& e) {
          EXPECT_STREQ(e.what(), "Nursery is closed to new arrivals");
        }
        tried = true;
      });
      open_nursery([&](Nursery& inner) { closed = &inner; });
      closed = nullptr;
    });
    EXPECT_TRUE(tried);
  });
}

// Ports test_run.py::test_nursery_start (start() on a closed nursery fails at once)
TEST(TrioStart, ClosedNurseryRefusesStartImmediately) {
  run_autojump([] {
    Nursery* closed = nullptr;
    bool tried = false;
    open_nursery([&](Nursery& outer) {
      outer.start_soon([&] {
        ASSERT_NE(closed, nullptr);
        const Time t0 = current_time();
        try {
          closed->start([](TaskStatus<>& s) {
            sleep(7s);
            s.started();
          });
          ADD_FAILURE() << "start() on a closed nursery did not throw";
        } catch (const UsageError& e) {
          EXPECT_STREQ(e.what(), "Nursery is closed to new arrivals");
        }
        EXPECT_EQ(current_time(), t0);
        tried = true;
      });
      open_nursery([&](Nursery& inner) { closed = &inner; });
      closed = nullptr;
    });
    EXPECT_TRUE(tried);
  });
}

// ---- low-level parking --------------------------------------------------------------------

// Ports test_run.py::test_reschedule
TEST(TrioLowlevel, RescheduleWakesAParkedTaskOrThrowsIntoIt) {
  std::vector<std::string> record;
  run_autojump([&] {
    lowlevel::Task* t1 = nullptr;
    lowlevel::Task* t2 = nullptr;
    auto always_abort = [](std::exception_ptr) { return lowlevel::Abort::kSucceeded; };
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        t1 = &lowlevel::current_task();
        lowlevel::wait_task_rescheduled(always_abort, "test wait");
        record.push_back("child1 woke");
        lowlevel::reschedule(*t2, std::make_exception_ptr(ValueError("error message")));
      });
      checkpoint();  // let child1 run and park
      n.start_soon([&] {
        t2 = &lowlevel::current_task();
        lowlevel::reschedule(*t1);
        try {
          lowlevel::wait_task_rescheduled(always_abort, "test wait");
          ADD_FAILURE() << "child2 woke without the error";
        } catch (const ValueError& e) {
          EXPECT_STREQ(e.what(), "error message");
          record.push_back("child2 got the error");
        }
      });
    });
  });
  EXPECT_EQ(record, (std::vector<std::string>{"child1 woke", "child2 got the error"}));
}

// Ports test_run.py::test_failed_abort
TEST(TrioLowlevel, FailedAbortLeavesTheTaskParkedUntilRescheduled) {
  std::vector<std::string> record;
  run_autojump([&] {
    lowlevel::Task* stubborn = nullptr;
    CancelScope* stubborn_scope = nullptr;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        stubborn = &lowlevel::current_task();
        CancelScope scope;
        scope.run([&] {
          stubborn_scope = &scope;
          record.push_back("sleep");
          lowlevel::wait_task_rescheduled(
              [](std::exception_ptr) { return lowlevel::Abort::kFailed; }, "stubborn");
          record.push_back("woke");
          try {
            checkpoint_if_cancelled();
          } catch (const Cancelled&) {
            record.push_back("cancelled");
          }
        });
      });
      fakes::wait_all_tasks_blocked();
      EXPECT_EQ(record, std::vector<std::string>{"sleep"});
      stubborn_scope->cancel();
      fakes::wait_all_tasks_blocked();
      EXPECT_EQ(record, std::vector<std::string>{"sleep"});  // cancel() did not wake it
      lowlevel::reschedule(*stubborn);
    });
  });
  EXPECT_EQ(record, (std::vector<std::string>{"sleep", "woke", "cancelled"}));
}

// Ports test_run.py::test_slow_abort_basic (the waker delivers the Cancelled later)
TEST(TrioLowlevel, SlowAbortDeliversTheCancelledThroughTheWaker) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      lowlevel::Task& me = lowlevel::current_task();
      std::exception_ptr pending;
      n.start_soon([&] {
        fakes::wait_all_tasks_blocked();
        ASSERT_NE(pending, nullptr);
        lowlevel::reschedule(me, pending);
      });
      CancelScope scope;
      scope.run([&] {
        scope.cancel();
        EXPECT_THROW(lowlevel::wait_task_rescheduled(
                         [&](std::exception_ptr cancelled) {
                           pending = cancelled;
                           return lowlevel::Abort::kFailed;
                         },
                         "slow abort"),
                     Cancelled);
      });
    });
  });
}

// Ports test_run.py::test_slow_abort_edge_cases
TEST(TrioLowlevel, SlowAbortIsCalledOnceAndItsCancelledArrivesEvenIfShieldedLater) {
  std::vector<std::string> record;
  run_autojump([&] {
    lowlevel::Task* aborter = nullptr;
    std::exception_ptr pending;
    CancelScope outer1;
    CancelScope outer2;
    outer1.run([&] {
      outer2.run([&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            aborter = &lowlevel::current_task();
            record.push_back("sleeping");
            try {
              lowlevel::wait_task_rescheduled(
                  [&](std::exception_ptr cancelled) {
                    record.push_back("abort-called");
                    pending = cancelled;
                    return lowlevel::Abort::kFailed;
                  },
                  "slow abort");
              ADD_FAILURE() << "woke without Cancelled";
            } catch (const Cancelled&) {
              record.push_back("cancelled");
            }
            checkpoint();  // shielded by now
            record.push_back("done");
          });
          fakes::wait_all_tasks_blocked();
          EXPECT_EQ(record, std::vector<std::string>{"sleeping"});
          outer1.cancel();
          EXPECT_EQ(record, (std::vector<std::string>{"sleeping", "abort-called"}));
          outer2.cancel();
          EXPECT_EQ(record, (std::vector<std::string>{"sleeping", "abort-called"}));
          n.cancel_scope().set_shield(true);
          ASSERT_NE(pending, nullptr);
          lowlevel::reschedule(*aborter, pending);  // the slow abort completes
        });
        EXPECT_EQ(record,
                  (std::vector<std::string>{"sleeping", "abort-called", "cancelled", "done"}));
      });
    });
  });
}

// ---- the task tree ------------------------------------------------------------------------

// Ports test_run.py::test_current_task
TEST(TrioTaskTree, ChildsParentNurseryBelongsToTheSpawningTask) {
  run_autojump([] {
    lowlevel::Task& parent = lowlevel::current_task();
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        ASSERT_NE(lowlevel::current_task().parent_nursery(), nullptr);
        EXPECT_EQ(&lowlevel::current_task().parent_nursery()->parent_task(), &parent);
        EXPECT_NE(&lowlevel::current_task(), &parent);
      });
    });
  });
}

// Ports test_run.py::test_root_task
TEST(TrioTaskTree, RootTaskHasNoParentNurseries) {
  run_autojump([] {
    lowlevel::Task& root = lowlevel::current_root_task();
    EXPECT_EQ(root.parent_nursery(), nullptr);
    EXPECT_EQ(root.eventual_parent_nursery(), nullptr);
    EXPECT_NE(&root, &lowlevel::current_task());
  });
}

// Ports test_run.py::test_task_tree_introspection
TEST(TrioTaskTree, IntrospectionLinksTasksAndNurseries) {
  run_autojump([] {
    std::map<std::string, lowlevel::Task*> tasks;
    std::map<std::string, Nursery*> nurseries;
    auto child2 = [&] {
      tasks["child2"] = &lowlevel::current_task();
      EXPECT_EQ(tasks["parent"]->child_nurseries(), std::vector<Nursery*>{nurseries["parent"]});
      EXPECT_EQ(nurseries["parent"]->child_tasks(), std::vector<lowlevel::Task*>{tasks["child1"]});
      EXPECT_EQ(tasks["child1"]->child_nurseries(), std::vector<Nursery*>{nurseries["child1"]});
      EXPECT_EQ(nurseries["child1"]->child_tasks(), std::vector<lowlevel::Task*>{tasks["child2"]});
      EXPECT_TRUE(tasks["child2"]->child_nurseries().empty());
      EXPECT_EQ(tasks["child2"]->parent_nursery(), nurseries["child1"]);
      EXPECT_EQ(&nurseries["child1"]->parent_task(), tasks["child1"]);
    };
    auto child1 = [&](TaskStatus<>& status) {
      lowlevel::Task& me = lowlevel::current_task();
      tasks["child1"] = &me;
      ASSERT_NE(me.parent_nursery(), nullptr);
      EXPECT_EQ(&me.parent_nursery()->parent_task(), tasks["parent"]);
      EXPECT_NE(me.parent_nursery(), nurseries["parent"]);
      EXPECT_EQ(me.eventual_parent_nursery(), nurseries["parent"]);
      status.started();
      EXPECT_EQ(me.parent_nursery(), nurseries["parent"]);
      EXPECT_EQ(me.eventual_parent_nursery(), nullptr);
      // Let start() return and close its private nursery.
      fakes::wait_all_tasks_blocked();
      open_nursery([&](Nursery& n) {
        nurseries["child1"] = &n;
        n.start_soon(child2);
      });
    };
    auto parent = [&] {
      tasks["parent"] = &lowlevel::current_task();
      EXPECT_TRUE(tasks["parent"]->child_nurseries().empty());
      open_nursery([&](Nursery& n1) {
        open_nursery([&](Nursery& n2) {
          EXPECT_EQ(tasks["parent"]->child_nurseries(), (std::vector<Nursery*>{&n1, &n2}));
        });
      });
      EXPECT_TRUE(tasks["parent"]->child_nurseries().empty());
      open_nursery([&](Nursery& n) {
        nurseries["parent"] = &n;
        n.start(child1);
      });
      // Following parent links always ends at a null nursery.
      Nursery* nursery = lowlevel::current_task().parent_nursery();
      int hops = 0;
      while (nursery != nullptr && hops < 100) {
        nursery = nursery->parent_task().parent_nursery();
        ++hops;
      }
      EXPECT_EQ(nursery, nullptr);
    };
    open_nursery([&](Nursery& n) { n.start_soon(parent); });
    EXPECT_EQ(tasks.size(), 3u);
  });
}

// Ports test_run.py::test_task_nursery_stack
TEST(TrioTaskTree, ChildNurseriesIsAStack) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    EXPECT_TRUE(task.child_nurseries().empty());
    open_nursery([&](Nursery& n1) {
      EXPECT_EQ(task.child_nurseries(), std::vector<Nursery*>{&n1});
      EXPECT_THROW(open_nursery([&](Nursery& n2) {
                     EXPECT_EQ(task.child_nurseries(), (std::vector<Nursery*>{&n1, &n2}));
                     throw KeyError();
                   }),
                   ExceptionGroup);
      EXPECT_EQ(task.child_nurseries(), std::vector<Nursery*>{&n1});
    });
    EXPECT_TRUE(task.child_nurseries().empty());
  });
}

// Ports test_run.py::test_spawn_name
TEST(TrioTaskTree, SpawnOptionsNameIsTheTaskName) {
  std::string name;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "func3"}, [&] { name = lowlevel::current_task().name(); });
    });
  });
  EXPECT_EQ(name, "func3");
}

// Ports test_run.py::test_current_statistics
TEST(TrioStatistics, CountsLivingAndRunnableTasksAndTheNextDeadline) {
  fakes::MockClock clock;
  run(
      [] {
        fakes::wait_all_tasks_blocked();
        const std::size_t living = lowlevel::current_statistics().tasks_living;
        open_nursery([&](Nursery& n) {
          n.start_soon([] {
            try {
              sleep_forever();
            } catch (const Cancelled&) {
            }
          });
          fakes::wait_all_tasks_blocked();
          lowlevel::RunStatistics stats = lowlevel::current_statistics();
          EXPECT_EQ(stats.tasks_living, living + 1);
          EXPECT_EQ(stats.tasks_runnable, 0u);
          n.cancel_scope().cancel();
          stats = lowlevel::current_statistics();
          EXPECT_EQ(stats.tasks_runnable, 1u);
        });
        checkpoint();
        checkpoint();
        EXPECT_EQ(lowlevel::current_statistics().tasks_living, living);
        CancelScope scope(current_time() + 5s);
        scope.run([] {
          const lowlevel::RunStatistics stats = lowlevel::current_statistics();
          EXPECT_EQ(stats.time_to_next_deadline, Duration(5s));
          EXPECT_EQ(stats.deadlines_pending, 1u);
        });
        const lowlevel::RunStatistics stats = lowlevel::current_statistics();
        EXPECT_EQ(stats.time_to_next_deadline, Duration::max());
        EXPECT_EQ(stats.deadlines_pending, 0u);
      },
      {.clock = &clock});
}

// ---- cancel points and checkpoints --------------------------------------------------------

// Ports test_run.py::test_cancel_points (main1)
TEST(TrioCheckpoint, CheckpointIfCancelledRaisesOnlyOnceCancelled) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      EXPECT_NO_THROW(checkpoint_if_cancelled());
      scope.cancel();
      EXPECT_THROW(checkpoint_if_cancelled(), Cancelled);
    });
  });
}

// Ports test_run.py::test_cancel_points (main2)
TEST(TrioCheckpoint, CheckpointRaisesOnlyOnceCancelled) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      EXPECT_NO_THROW(checkpoint());
      scope.cancel();
      EXPECT_THROW(checkpoint(), Cancelled);
    });
  });
}

// Ports test_run.py::test_cancel_points (main3)
TEST(TrioCheckpoint, BlockingInACancelledScopeRaises) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      EXPECT_THROW(sleep_forever(), Cancelled);
    });
  });
}

// Ports test_run.py::test_cancel_points (main4)
TEST(TrioCheckpoint, CancelShieldedCheckpointNeverRaises) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      EXPECT_NO_THROW(lowlevel::cancel_shielded_checkpoint());
      EXPECT_NO_THROW(lowlevel::cancel_shielded_checkpoint());
      EXPECT_THROW(checkpoint(), Cancelled);
    });
  });
}

// Ports test_run.py::test_trivial_yields (checkpoint is both points)
TEST(TrioCheckpoint, CheckpointIsAScheduleAndACancelPoint) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    const auto cancel_points = task.cancel_points();
    const auto schedule_points = task.schedule_points();
    checkpoint();
    EXPECT_GT(task.cancel_points(), cancel_points);
    EXPECT_GT(task.schedule_points(), schedule_points);
  });
}

// Ports test_run.py::test_trivial_yields (the two halves of a checkpoint)
TEST(TrioCheckpoint, CheckpointIfCancelledIsACancelPointAndShieldedCheckpointASchedulePoint) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    auto cancel_points = task.cancel_points();
    auto schedule_points = task.schedule_points();
    checkpoint_if_cancelled();
    EXPECT_GT(task.cancel_points(), cancel_points);
    EXPECT_EQ(task.schedule_points(), schedule_points);  // no yield when not cancelled
    cancel_points = task.cancel_points();
    lowlevel::cancel_shielded_checkpoint();
    EXPECT_EQ(task.cancel_points(), cancel_points);
    EXPECT_GT(task.schedule_points(), schedule_points);
  });
}

// Ports test_run.py::test_trivial_yields (an empty nursery schedules but never cancels)
TEST(TrioCheckpoint, EmptyNurseryInACancelledScopeIsOnlyASchedulePoint) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    const auto cancel_points = task.cancel_points();
    const auto schedule_points = task.schedule_points();
    CancelScope cs;
    cs.run([&] {
      cs.cancel();
      open_nursery([](Nursery&) {});
    });
    EXPECT_FALSE(cs.cancelled_caught());
    EXPECT_GT(task.schedule_points(), schedule_points);
    EXPECT_EQ(task.cancel_points(), cancel_points);
  });
}

// Ports test_run.py::test_trivial_yields (a child that never checkpoints is not cancelled)
TEST(TrioCheckpoint, NurseryWhoseChildNeverCheckpointsIsNotCancelled) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    const auto schedule_points = task.schedule_points();
    bool child_ran = false;
    CancelScope cs;
    cs.run([&] {
      cs.cancel();
      open_nursery([&](Nursery& n) { n.start_soon([&] { child_ran = true; }); });
    });
    EXPECT_TRUE(child_ran);
    EXPECT_FALSE(cs.cancelled_caught());
    EXPECT_GT(task.schedule_points(), schedule_points);
  });
}

// Ports test_run.py::test_trivial_yields (the body's own error still propagates)
TEST(TrioCheckpoint, ErrorOfANurseryInACancelledScopePropagates) {
  run_autojump([] {
    CancelScope cs;
    try {
      cs.run([&] {
        cs.cancel();
        open_nursery([](Nursery&) { throw KeyError(); });
      });
      ADD_FAILURE() << "the KeyError was swallowed";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      EXPECT_NE(as<KeyError>(group.exceptions()[0]), nullptr);
    }
    EXPECT_FALSE(cs.cancelled_caught());
  });
}

// ---- cancel scopes ------------------------------------------------------------------------

// Ports test_run.py::test_cancel_edge_cases (idempotent cancel)
TEST(TrioCancelScope, CancelIsIdempotentAndTheScopeCatchesIt) {
  run_autojump([] {
    CancelScope scope;
    const bool completed = scope.run([&] {
      scope.cancel();
      scope.cancel();
      checkpoint();
    });
    EXPECT_FALSE(completed);
    EXPECT_TRUE(scope.cancel_called());
    EXPECT_TRUE(scope.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_edge_cases (level triggering)
TEST(TrioCancelScope, CancellationIsLevelTriggered) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      EXPECT_THROW(sleep_forever(), Cancelled);
      EXPECT_THROW(sleep_forever(), Cancelled);
      EXPECT_THROW(checkpoint(), Cancelled);
    });
  });
}

// Ports test_run.py::test_cancel_scope_exceptiongroup_filtering
TEST(TrioCancelScope, StripsItsCancelledLeavesOutOfAGroup) {
  run_autojump([] {
    CancelScope outer;
    try {
      outer.run([&] {
        try {
          open_nursery([&](Nursery& n) {
            n.start_soon(sleep_forever_task);  // t1, cancelled by the nursery scope
            n.start_soon(sleep_forever_task);  // t2, likewise
            n.cancel_scope().cancel();
            CancelScope shield(kNoDeadline, /*shield=*/true);
            shield.run([] { fakes::wait_all_tasks_blocked(); });
            n.start_soon(sleep_forever_task);  // t3, cancelled (also) by outer
            outer.cancel();
            n.start_soon([] { throw KeyError(); });  // t4
          });
          ADD_FAILURE() << "open_nursery returned";
        } catch (const ExceptionGroup& group) {
          // The outer scope is cancelled too, so the nursery's scope passes every
          // Cancelled on: three Cancelled and the KeyError.
          EXPECT_EQ(group.exceptions().size(), 4u);
          EXPECT_EQ(count_of<Cancelled>(group), 3u);
          EXPECT_EQ(count_of<KeyError>(group), 1u);
          throw;
        }
      });
      ADD_FAILURE() << "outer scope swallowed the KeyError";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      EXPECT_NE(as<KeyError>(group.exceptions()[0]), nullptr);
      EXPECT_FALSE(group.contains<Cancelled>());
    }
    EXPECT_TRUE(outer.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_scope_no_cancellederror
TEST(TrioCancelScope, GroupWithoutCancelledIsNotCaught) {
  run_autojump([] {
    CancelScope scope;
    try {
      scope.run([&] {
        scope.cancel();
        throw ExceptionGroup("test", {std::make_exception_ptr(std::runtime_error("a")),
                                      std::make_exception_ptr(std::runtime_error("b"))});
      });
      ADD_FAILURE() << "the group was swallowed";
    } catch (const ExceptionGroup& group) {
      EXPECT_EQ(group.message(), "test");
      EXPECT_EQ(group.exceptions().size(), 2u);
    }
    EXPECT_FALSE(scope.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_shielding
TEST(TrioCancelScope, ShieldBlocksOuterCancellationButNotItsOwnOrInnerOnes) {
  run_autojump([] {
    CancelScope outer;
    CancelScope inner;
    outer.run([&] {
      inner.run([&] {
        checkpoint();
        outer.cancel();
        EXPECT_THROW(checkpoint(), Cancelled);
        EXPECT_FALSE(inner.shield());
        inner.set_shield(true);
        EXPECT_TRUE(inner.shield());
        EXPECT_NO_THROW(checkpoint());  // shielded from outer
        CancelScope innerest;
        innerest.run([&] {
          innerest.cancel();
          EXPECT_THROW(checkpoint(), Cancelled);  // the shield does not cover inner scopes
        });
        EXPECT_NO_THROW(checkpoint());
        inner.set_shield(false);
        EXPECT_THROW(checkpoint(), Cancelled);
        inner.set_shield(true);
        EXPECT_NO_THROW(checkpoint());
        inner.cancel();  // a shield does not cover its own scope
        checkpoint();
        ADD_FAILURE() << "checkpoint in a cancelled shielded scope returned";
      });
      EXPECT_TRUE(inner.cancelled_caught());
    });
    EXPECT_FALSE(outer.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_inheritance
TEST(TrioCancelScope, CancellingANurseryReachesGrandchildrenAtOnce) {
  std::set<std::string> record;
  run_autojump([&] {
    auto leaf = [&](std::string id) {
      try {
        sleep_forever();
      } catch (const Cancelled&) {
        record.insert(id);
      }
    };
    auto worker = [&](std::string id) {
      open_nursery([&](Nursery& n) {
        n.start_soon(leaf, id + "-l1");
        n.start_soon(leaf, id + "-l2");
      });
    };
    open_nursery([&](Nursery& n) {
      n.start_soon(worker, "w1");
      n.start_soon(worker, "w2");
      n.cancel_scope().cancel();
    });
  });
  EXPECT_EQ(record, (std::set<std::string>{"w1-l1", "w1-l2", "w2-l1", "w2-l2"}));
}

// Ports test_run.py::test_cancel_shield_abort
TEST(TrioCancelScope, UnshieldingAbortsTheWaitOfABlockedChild) {
  run_autojump([] {
    CancelScope outer;
    outer.run([&] {
      open_nursery([&](Nursery& n) {
        outer.cancel();
        n.cancel_scope().set_shield(true);
        std::vector<std::string> record;
        n.start_soon([&] {
          record.push_back("sleeping");
          try {
            sleep_forever();
          } catch (const Cancelled&) {
            record.push_back("cancelled");
          }
        });
        fakes::wait_all_tasks_blocked();
        EXPECT_EQ(record, std::vector<std::string>{"sleeping"});
        n.cancel_scope().set_shield(false);
        CancelScope shield(kNoDeadline, /*shield=*/true);
        shield.run([&] {
          fakes::wait_all_tasks_blocked();
          EXPECT_EQ(record, (std::vector<std::string>{"sleeping", "cancelled"}));
        });
      });
    });
  });
}

// Ports test_run.py::test_cancel_scope_nesting (both cancelled: the outer one catches)
TEST(TrioCancelScope, OutermostOfTwoCancelledScopesCatches) {
  run_autojump([] {
    CancelScope scope1;
    CancelScope scope2;
    CancelScope scope3;
    scope1.run([&] {
      scope2.run([&] {
        scope3.run([&] {
          scope3.cancel();
          scope2.cancel();
          sleep_forever();
        });
      });
    });
    EXPECT_TRUE(scope3.cancel_called());
    EXPECT_FALSE(scope3.cancelled_caught());
    EXPECT_TRUE(scope2.cancel_called());
    EXPECT_TRUE(scope2.cancelled_caught());
    EXPECT_FALSE(scope1.cancel_called());
    EXPECT_FALSE(scope1.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_scope_nesting (shielding an inner scope mid-cancellation)
TEST(TrioCancelScope, ShieldingAnInnerScopeStopsOuterCancellationAtOnce) {
  run_autojump([] {
    CancelScope scope1;
    CancelScope scope2;
    scope1.run([&] {
      scope2.run([&] {
        scope1.cancel();
        EXPECT_THROW(checkpoint(), Cancelled);
        EXPECT_THROW(checkpoint(), Cancelled);
        scope2.set_shield(true);
        EXPECT_NO_THROW(checkpoint());
        scope2.cancel();
        EXPECT_THROW(checkpoint(), Cancelled);
      });
    });
  });
}

// Ports test_run.py::test_cancel_scope_nesting (a pending cancel that is never delivered)
TEST(TrioCancelScope, UndeliveredCancellationIsNotCaught) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      lowlevel::cancel_shielded_checkpoint();
    });
    EXPECT_NO_THROW(checkpoint());
    EXPECT_FALSE(scope.cancelled_caught());
  });
}

// Ports test_run.py::test_unshield_while_cancel_propagating
TEST(TrioCancelScope, ShieldRaisedWhileCancelledUnwindsLeavesTheCatchToTheOuterScope) {
  run_autojump([] {
    CancelScope outer;
    CancelScope inner;
    outer.run([&] {
      inner.run([&] {
        outer.cancel();
        try {
          checkpoint();
        } catch (...) {
          inner.set_shield(true);
          throw;
        }
      });
    });
    EXPECT_TRUE(outer.cancelled_caught());
    EXPECT_FALSE(inner.cancelled_caught());
  });
}

// Ports test_run.py::test_cancel_unbound (cancelled before entry)
TEST(TrioCancelScope, CancelBeforeEntryTakesEffectInside) {
  run_autojump([] {
    CancelScope scope;
    scope.cancel();
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { scope.run([] { fail_after(1s, [] { sleep_forever(); }); }); });
    });
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_run.py::test_cancel_unbound (cancelled from another task after entry)
TEST(TrioCancelScope, CancelFromAnotherTaskAfterEntry) {
  run_autojump([] {
    CancelScope scope;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { scope.run([] { fail_after(1s, [] { sleep_forever(); }); }); });
      fakes::wait_all_tasks_blocked();
      scope.cancel();
    });
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_run.py::test_cancel_unbound (shield set before entry)
TEST(TrioCancelScope, ShieldSetBeforeEntryTakesEffectInside) {
  run_autojump([] {
    CancelScope outer;
    CancelScope scope;
    scope.set_shield(true);
    outer.run([&] {
      scope.run([&] {
        outer.cancel();
        EXPECT_NO_THROW(checkpoint());
        scope.set_shield(false);
        EXPECT_THROW(checkpoint(), Cancelled);
      });
    });
  });
}

// Ports test_run.py::test_cancel_unbound (can't reuse)
TEST(TrioCancelScope, CannotBeRunAgainAfterExit) {
  run_autojump([] {
    CancelScope scope;
    scope.run([] { checkpoint(); });
    scope.cancel();
    checkpoint();
    EXPECT_TRUE(scope.cancel_called());
    EXPECT_FALSE(scope.cancelled_caught());
    bool body_ran = false;
    try {
      scope.run([&] { body_ran = true; });
      ADD_FAILURE() << "second run() did not throw";
    } catch (const UsageError& e) {
      EXPECT_STREQ(e.what(), "Each CancelScope may only be used for a single run() block");
    }
    EXPECT_FALSE(body_ran);
  });
}

// Ports test_run.py::test_cancel_unbound (can't reenter)
TEST(TrioCancelScope, CannotBeReenteredFromInside) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      bool body_ran = false;
      try {
        scope.run([&] { body_ran = true; });
        ADD_FAILURE() << "nested run() did not throw";
      } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "Each CancelScope may only be used for a single run() block");
      }
      EXPECT_FALSE(body_ran);
    });
  });
}

// Ports test_run.py::test_cancel_unbound (can't enter from two tasks at once)
TEST(TrioCancelScope, CannotBeEnteredByASecondTask) {
  run_autojump([] {
    CancelScope scope;
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "this one"}, [&] { scope.run([] { sleep_forever(); }); });
      fakes::wait_all_tasks_blocked();
      try {
        scope.run([] { ADD_FAILURE() << "body ran"; });
        ADD_FAILURE() << "run() from a second task did not throw";
      } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "Each CancelScope may only be used for a single run() block");
      }
      n.cancel_scope().cancel();
    });
  });
}

// Ports test_run.py::test_cancel_unbound (an unentered scope sees its deadline pass)
TEST(TrioCancelScope, UnenteredScopeIsCancelCalledOnceItsDeadlinePassed) {
  run_autojump([] {
    CancelScope scope(current_time() + 1s);
    EXPECT_FALSE(scope.cancel_called());
    scope.set_deadline(scope.deadline() - 1s);
    EXPECT_TRUE(scope.cancel_called());
    scope.set_deadline(scope.deadline() + 1s);
    EXPECT_TRUE(scope.cancel_called());  // never un-cancelled
  });
}

// Ports test_run.py::test_very_deep_cancel_scope_nesting
void nest_scopes(int depth, CancelScope& outermost) {
  if (depth == 0) {
    outermost.cancel();
    checkpoint();
    ADD_FAILURE() << "innermost checkpoint returned";
    return;
  }
  CancelScope scope;
  scope.run([&] { nest_scopes(depth - 1, outermost); });
  EXPECT_FALSE(scope.cancelled_caught());
}

TEST(TrioCancelScope, VeryDeepNestingCancelsAndTheOutermostCatches) {
  run_autojump(
      [] {
        CancelScope outermost;
        outermost.run([&] { nest_scopes(5000, outermost); });
        EXPECT_TRUE(outermost.cancelled_caught());
      },
      {.stack_size = 64u << 20});
}

// ---- deadlines ----------------------------------------------------------------------------

// Ports test_run.py::test_basic_timeout (a deadline set inside has no effect after exit)
TEST(TrioDeadline, DeadlinePassingAfterExitDoesNotCancel) {
  fakes::MockClock clock;
  run(
      [&] {
        const Time start = current_time();
        CancelScope scope;
        scope.run([&] {
          EXPECT_EQ(scope.deadline(), kNoDeadline);
          scope.set_deadline(start + 1s);
          EXPECT_EQ(scope.deadline(), start + 1s);
        });
        EXPECT_FALSE(scope.cancel_called());
        clock.jump(2s);
        checkpoint();
        checkpoint();
        checkpoint();
        EXPECT_FALSE(scope.cancel_called());
      },
      {.clock = &clock});
}

// Ports test_run.py::test_basic_timeout (an expired deadline cancels a blocked body)
TEST(TrioDeadline, ExpiredDeadlineCancelsTheBlockedBody) {
  fakes::MockClock clock;
  run(
      [&] {
        CancelScope scope(current_time() + 1s);
        scope.run([&] {
          clock.jump(2s);
          sleep_forever();
        });
        EXPECT_TRUE(scope.cancel_called());
        EXPECT_TRUE(scope.cancelled_caught());
      },
      {.clock = &clock});
}

// Ports test_run.py::test_basic_timeout (changing the deadline while inside)
TEST(TrioDeadline, MovingTheDeadlineIntoThePastCancels) {
  fakes::MockClock clock;
  run(
      [&] {
        const Time start = current_time();
        CancelScope scope;
        scope.run([&] {
          checkpoint();
          scope.set_deadline(start + 10s);
          EXPECT_NO_THROW(checkpoint());
          clock.jump(5s);
          EXPECT_NO_THROW(checkpoint());
          scope.set_deadline(start + 1s);
          EXPECT_THROW(checkpoint(), Cancelled);
          EXPECT_THROW(checkpoint(), Cancelled);
        });
      },
      {.clock = &clock});
}

// Ports test_run.py::test_yield_briefly_checks_for_timeout
TEST(TrioDeadline, CheckpointNoticesAnExpiredDeadline) {
  fakes::MockClock clock;
  run(
      [&] {
        CancelScope scope(current_time() + 5s);
        scope.run([&] {
          EXPECT_NO_THROW(checkpoint());
          clock.jump(10s);
          EXPECT_THROW(checkpoint(), Cancelled);
        });
      },
      {.clock = &clock});
}

// Ports test_run.py::test_cancel_scope_deadline_duplicates
TEST(TrioDeadline, ManyDeadlineChangesLeaveOneLiveDeadline) {
  run_autojump([] {
    const Time now = current_time();
    CancelScope scope;
    scope.run([&] {
      for (int i = 0; i < 2000; ++i) {
        scope.set_deadline(now + 9998s);
        scope.set_deadline(now + 9999s);
      }
      EXPECT_EQ(lowlevel::current_statistics().deadlines_pending, 1u);
      sleep(10ms);
    });
    EXPECT_EQ(current_time(), now + 10ms);
    EXPECT_FALSE(scope.cancel_called());
  });
}

// Ports test_run.py::test_current_effective_deadline (the sequence of trio-api.md §4)
TEST(TrioDeadline, CurrentEffectiveDeadlineFollowsScopesAndShields) {
  fakes::MockClock clock;
  run(
      [] {
        EXPECT_EQ(current_effective_deadline(), kNoDeadline);
        CancelScope scope1(at(5s));
        CancelScope scope2(at(10s));
        scope1.run([&] {
          scope2.run([&] {
            EXPECT_EQ(current_effective_deadline(), at(5s));
            scope2.set_deadline(at(3s));
            EXPECT_EQ(current_effective_deadline(), at(3s));
            scope2.set_deadline(at(10s));
            EXPECT_EQ(current_effective_deadline(), at(5s));
            scope2.set_shield(true);
            EXPECT_EQ(current_effective_deadline(), at(10s));
            scope2.set_shield(false);
            EXPECT_EQ(current_effective_deadline(), at(5s));
            scope1.cancel();
            EXPECT_EQ(current_effective_deadline(), Time::min());
            scope2.set_shield(true);
            EXPECT_EQ(current_effective_deadline(), at(10s));
          });
          EXPECT_EQ(current_effective_deadline(), Time::min());
        });
        EXPECT_EQ(current_effective_deadline(), kNoDeadline);
      },
      {.clock = &clock});
}

// ---- Cancelled's source -------------------------------------------------------------------

// Ports test_cancelled.py::test_cancel_reason (source only: Trellis has no reason string)
TEST(TrioCancelled, ExplicitCancelNamesItsSource) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      try {
        checkpoint();
      } catch (const Cancelled& c) {
        EXPECT_EQ(c.source(), CancelSource::kExplicit);
        EXPECT_EQ(std::string(c.what()).rfind("cancelled due to explicit", 0), 0u) << c.what();
        throw;
      }
    });
  });
}

// Ports test_cancelled.py::test_cancel_reason (deadline source)
TEST(TrioCancelled, DeadlineNamesItsSource) {
  run_autojump([] {
    move_on_after(1s, [] {
      try {
        sleep_forever();
      } catch (const Cancelled& c) {
        EXPECT_EQ(c.source(), CancelSource::kDeadline);
        EXPECT_EQ(std::string(c.what()), "cancelled due to deadline");
        throw;
      }
    });
  });
}

// Ports test_cancelled.py::test_cancel_reason_nursery
TEST(TrioCancelled, CrashingSiblingNamesTheNurseryAsSource) {
  std::optional<CancelSource> seen;
  EXPECT_THROW(run_autojump([&] {
                 open_nursery([&](Nursery& n) {
                   n.start_soon([&] {
                     try {
                       sleep_forever();
                     } catch (const Cancelled& c) {
                       seen = c.source();
                       throw;
                     }
                   });
                   n.start_soon([] {
                     checkpoint();
                     throw ValueError();
                   });
                 });
               }),
               ExceptionGroup);
  EXPECT_EQ(seen, CancelSource::kNursery);
}

// Ports test_cancelled.py::test_cancel_reason_not_overwritten
TEST(TrioCancelled, ExplicitSourceSticksWhenTheDeadlinePassesLater) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      for (int i = 0; i < 2; ++i) {
        try {
          checkpoint();
          ADD_FAILURE() << "checkpoint returned";
        } catch (const Cancelled& c) {
          EXPECT_EQ(c.source(), CancelSource::kExplicit);
        }
        scope.set_deadline(Time::min());
      }
    });
  });
}

// Ports test_cancelled.py::test_cancel_reason_not_overwritten_2
TEST(TrioCancelled, DeadlineSourceSticksWhenCancelledLater) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.set_deadline(Time::min());
      for (int i = 0; i < 2; ++i) {
        try {
          checkpoint();
          ADD_FAILURE() << "checkpoint returned";
        } catch (const Cancelled& c) {
          EXPECT_EQ(c.source(), CancelSource::kDeadline);
          EXPECT_EQ(std::string(c.what()), "cancelled due to deadline");
        }
        scope.cancel();
      }
    });
  });
}

// ---- Nursery::start() and TaskStatus ------------------------------------------------------

void sleep_then_start(TaskStatus<int>& status, int seconds) {
  sleep(std::chrono::seconds(seconds));
  status.started(seconds);
  sleep(std::chrono::seconds(seconds));
}

// Ports test_run.py::test_nursery_start (happy path)
TEST(TrioStart, ReturnsTheStartedValueAndTheNurseryWaitsForTheChild) {
  run_autojump([] {
    for (int seconds : {1, 2}) {
      const Time t0 = current_time();
      open_nursery([&](Nursery& n) {
        EXPECT_EQ(n.child_count(), 0u);
        EXPECT_EQ(n.start<int>(sleep_then_start, seconds), seconds);
        EXPECT_EQ(current_time() - t0, std::chrono::seconds(seconds));
        EXPECT_EQ(n.child_count(), 1u);
      });
      EXPECT_EQ(current_time() - t0, std::chrono::seconds(2 * seconds));
    }
  });
}

// Ports test_run.py::test_nursery_start (TASK_STATUS_IGNORED)
TEST(TrioStart, IgnoredTaskStatusLetsTheFunctionBeCalledDirectly) {
  run_autojump([] {
    const Time t0 = current_time();
    TaskStatus<int> ignored;
    sleep_then_start(ignored, 3);
    EXPECT_EQ(current_time() - t0, Duration(6s));
  });
}

// Ports test_run.py::test_nursery_start (started twice)
TEST(TrioStart, StartedTwiceIsAUsageError) {
  bool checked = false;
  run_autojump([&] {
    open_nursery([&](Nursery& n) {
      n.start([&](TaskStatus<>& status) {
        status.started();
        try {
          status.started();
          ADD_FAILURE() << "second started() did not throw";
        } catch (const UsageError& e) {
          EXPECT_STREQ(e.what(), "called 'started' twice on the same task status");
          checked = true;
        }
      });
    });
  });
  EXPECT_TRUE(checked);
}

// Ports test_run.py::test_nursery_start (crash before started: the error leaves start())
TEST(TrioStart, ErrorBeforeStartedComesOutOfStartUnwrapped) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      try {
        n.start([](TaskStatus<>&) { throw KeyError("oops"); });
        ADD_FAILURE() << "start() returned";
      } catch (const KeyError& e) {
        EXPECT_STREQ(e.what(), "oops");
      }
      EXPECT_EQ(n.child_count(), 0u);
    });  // the nursery itself saw no error
  });
}

// Ports test_run.py::test_nursery_start (returning without started)
TEST(TrioStart, ReturningWithoutStartedIsAUsageError) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      try {
        n.start([](TaskStatus<>&) {});
        ADD_FAILURE() << "start() returned";
      } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "child exited without calling task_status.started()");
      }
    });
  });
}

// Ports test_run.py::test_nursery_start (a cancelled start() makes started() a no-op)
TEST(TrioStart, CancelledCallerGetsCancelledEvenAfterStarted) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      CancelScope cs;
      cs.run([&] {
        cs.cancel();
        EXPECT_THROW(n.start<std::string>([](TaskStatus<std::string>& status) {
          status.started("hi");
          checkpoint();
        }),
                     Cancelled);
      });
      EXPECT_EQ(n.child_count(), 0u);
    });
  });
}

// Ports test_run.py::test_nursery_start (cancelled caller, child exits without checkpoint)
TEST(TrioStart, CancelledCallerSucceedsIfTheChildNeverCheckpoints) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      CancelScope cs;
      std::optional<int> value = cs.run([&] {
        cs.cancel();
        return n.start<int>([](TaskStatus<int>& status) { status.started(7); });
      });
      EXPECT_EQ(value, 7);
      EXPECT_FALSE(cs.cancelled_caught());
    });
  });
}

// Ports test_run.py::test_nursery_start (cancelled caller, child crashes after started)
TEST(TrioStart, CancelledCallerGetsTheChildsErrorAfterStarted) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      CancelScope cs;
      cs.run([&] {
        cs.cancel();
        EXPECT_THROW(n.start([](TaskStatus<>& status) {
          status.started();
          throw KeyError("whoopsiedaisy");
        }),
                     KeyError);
      });
    });
  });
}

// Ports test_run.py::test_nursery_start (start() is blocked by the caller's cancellation)
TEST(TrioStart, CancellingTheCallerCancelsTheChildBeforeStarted) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      bool child_cancelled = false;
      const bool completed = move_on_after(5s, [&] {
        n.start([&](TaskStatus<>& status) {
          try {
            sleep(10s);
          } catch (const Cancelled&) {
            child_cancelled = true;
            throw;
          }
          status.started();
        });
      });
      EXPECT_FALSE(completed);
      EXPECT_TRUE(child_cancelled);
      EXPECT_EQ(current_time(), at(5s));
    });
  });
}

// Ports test_run.py::test_nursery_start_with_cancelled_nursery
void setup_nursery(TaskStatus<Nursery*>& status) {
  open_nursery([&](Nursery& n) {
    status.started(&n);
    sleep_forever();
  });
}

void sleeping_children(TaskStatus<>& status, std::function<void()> before_started) {
  open_nursery([&](Nursery& n) {
    n.start_soon(sleep_forever_task);
    n.start_soon(sleep_forever_task);
    fakes::wait_all_tasks_blocked();
    before_started();
    status.started();
  });
}

// Ports test_run.py::test_nursery_start_with_cancelled_nursery (cancelled just before)
TEST(TrioStart, TargetCancelledJustBeforeStartedCancelsTheMovedChildren) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      Nursery* target = n.start<Nursery*>(setup_nursery);
      target->start(sleeping_children, [target] { target->cancel_scope().cancel(); });
    });
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_run.py::test_nursery_start_with_cancelled_nursery (cancelled just after)
TEST(TrioStart, TargetCancelledJustAfterStartedCancelsTheMovedChildren) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      Nursery* target = n.start<Nursery*>(setup_nursery);
      target->start(sleeping_children, [] {});
      target->cancel_scope().cancel();
    });
    EXPECT_EQ(current_time(), at(0s));
  });
}

void sleep_a_bit(TaskStatus<>& status) {
  sleep(2s);
  status.started();
  sleep(3s);
}

// Ports test_run.py::test_nursery_start_keeps_nursery_open
TEST(TrioStart, PendingStartKeepsTheTargetNurseryOpen) {
  run_autojump([] {
    open_nursery([](Nursery& n1) {
      const Time t0 = current_time();
      open_nursery([&](Nursery& n2) {
        n1.start_soon([&] { n2.start(sleep_a_bit); });
        sleep(1s);
        n1.start_soon([&] { n2.start(sleep_a_bit); });
        // n2 has no child now: only the two pending start() calls keep it open.
      });
      EXPECT_EQ(current_time() - t0, Duration(6s));
    });
  });
}

// Ports test_run.py::test_nursery_start_keeps_nursery_open (the pending child crashes)
TEST(TrioStart, PendingStartThatCrashesReleasesTheTargetNursery) {
  run_autojump([] {
    open_nursery([](Nursery& n1) {
      const Time t0 = current_time();
      open_nursery([&](Nursery& n2) {
        n1.start_soon([&] {
          EXPECT_THROW(n2.start([](TaskStatus<>&) {
            sleep(7s);
            throw KeyError();
          }),
                       KeyError);
        });
        fakes::wait_all_tasks_blocked();
      });
      EXPECT_EQ(current_time() - t0, Duration(7s));
    });
  });
}

// The foot-gun of trio-api.md §2 and Trio's docs (as test_run.py's start_soon tests rely on):
// a task belongs to its nursery's scope, not to the scope around the start_soon() call.
TEST(TrioStart, CancelScopeAroundStartSoonAloneDoesNothing) {
  bool finished = false;
  run_autojump([&] {
    CancelScope cs;
    open_nursery([&](Nursery& n) {
      cs.run([&] {
        n.start_soon([&] {
          sleep(10s);
          finished = true;
        });
      });
      cs.cancel();
    });
    EXPECT_EQ(current_time(), at(10s));
    EXPECT_FALSE(cs.cancelled_caught());
  });
  EXPECT_TRUE(finished);
}

// The counterpart of the foot-gun: start() runs the child under the caller's scopes until
// started(), so the same cancel scope does reach it then.
TEST(TrioStart, CancelScopeAroundStartCoversTheChildUntilStarted) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      CancelScope cs;
      n.start_soon([&] {
        sleep(1s);
        cs.cancel();
      });
      cs.run([&] {
        n.start([](TaskStatus<>& status) {
          sleep(10s);
          status.started();
        });
      });
      EXPECT_TRUE(cs.cancelled_caught());
      EXPECT_EQ(current_time(), at(1s));
    });
  });
}

// Ports test_run.py::test_trio_run_strict_before_started (loose run, error before started)
TEST(TrioStart, ErrorBeforeStartedIsNotWrappedByStart) {
  try {
    run_autojump(
        [] {
          open_nursery([](Nursery& n) { n.start([](TaskStatus<>&) { throw ValueError(); }); });
        },
        {.strict_exception_groups = false});
    FAIL() << "run() returned";
  } catch (const ValueError&) {
    // A loose nursery with one error throws it bare: start() did not wrap it.
  }
}

// Ports test_run.py::test_trio_run_strict_before_started (strict run, error before started)
TEST(TrioStart, ErrorBeforeStartedIsWrappedOnlyByTheCallersStrictNursery) {
  try {
    run_autojump([] {
      open_nursery([](Nursery& n) { n.start([](TaskStatus<>&) { throw ValueError(); }); });
    });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    ASSERT_EQ(group.exceptions().size(), 1u);
    EXPECT_NE(as<ValueError>(group.exceptions()[0]), nullptr);  // not a group in a group
  }
}

// Ports test_run.py::test_trio_run_strict_before_started (the child raises its own group)
TEST(TrioStart, GroupRaisedBeforeStartedComesOutAsItIs) {
  run_autojump([] {
    open_nursery([](Nursery& n) {
      try {
        n.start([](TaskStatus<>&) {
          throw ExceptionGroup("my group", {std::make_exception_ptr(ValueError())});
        });
        ADD_FAILURE() << "start() returned";
      } catch (const ExceptionGroup& group) {
        EXPECT_EQ(group.message(), "my group");
        ASSERT_EQ(group.exceptions().size(), 1u);
        EXPECT_NE(as<ValueError>(group.exceptions()[0]), nullptr);
      }
    });
  });
}

// Ports test_run.py::test_trio_run_strict_before_started (raise after started)
TEST(TrioStart, ErrorAfterStartedGoesToTheTargetNursery) {
  run_autojump([] {
    NurseryOptions loose{.strict_exception_groups = false};
    try {
      open_nursery(loose, [](Nursery& n) {
        n.start([](TaskStatus<>& status) {
          status.started();
          throw ValueError("after");
        });
      });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ValueError& e) {
      EXPECT_STREQ(e.what(), "after");
    }
    try {
      open_nursery([](Nursery& n) {
        n.start([](TaskStatus<>& status) {
          status.started();
          throw ValueError("after");
        });
      });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      EXPECT_NE(as<ValueError>(group.exceptions()[0]), nullptr);
    }
  });
}

// Ports test_run.py::test_start_exception_preserves_cause_and_context
TEST(TrioStart, ErrorBeforeStartedKeepsItsNestedCause) {
  run_autojump([] {
    try {
      open_nursery([](Nursery& n) {
        n.start([](TaskStatus<>&) {
          try {
            throw std::logic_error("bar");
          } catch (...) {
            std::throw_with_nested(ValueError("foo"));
          }
        });
      });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      const ValueError* e = as<ValueError>(group.exceptions()[0]);
      ASSERT_NE(e, nullptr);
      EXPECT_STREQ(e->what(), "foo");
      try {
        std::rethrow_if_nested(*e);
        ADD_FAILURE() << "the nested cause was lost";
      } catch (const std::logic_error& cause) {
        EXPECT_STREQ(cause.what(), "bar");
      }
    }
  });
}

// ---- strict and loose exception groups ----------------------------------------------------

void raise_test_error() {
  throw std::runtime_error("test error");
}

// Ports test_run.py::test_setting_strict_exception_groups (run loose, one error)
TEST(TrioStrict, LooseRunThrowsALoneErrorBare) {
  try {
    run_autojump([] { open_nursery([](Nursery& n) { n.start_soon(raise_test_error); }); },
                 {.strict_exception_groups = false});
    FAIL() << "run() returned";
  } catch (const ExceptionGroup&) {
    FAIL() << "a loose nursery wrapped a lone error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "test error");
  }
}

// Ports test_run.py::test_setting_strict_exception_groups (run loose, two errors)
TEST(TrioStrict, LooseRunStillGroupsSeveralErrors) {
  try {
    run_autojump(
        [] {
          open_nursery([](Nursery& n) {
            n.start_soon(raise_test_error);
            n.start_soon(raise_test_error);
          });
        },
        {.strict_exception_groups = false});
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    EXPECT_EQ(group.exceptions().size(), 2u);
    EXPECT_EQ(count_of<std::runtime_error>(group), 2u);
  }
}

// Ports test_run.py::test_setting_strict_exception_groups (run strict by default)
TEST(TrioStrict, StrictByDefaultGroupsALoneError) {
  try {
    run_autojump([] { open_nursery([](Nursery& n) { n.start_soon(raise_test_error); }); });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    ASSERT_EQ(group.exceptions().size(), 1u);
    const std::runtime_error* e = as<std::runtime_error>(group.exceptions()[0]);
    ASSERT_NE(e, nullptr);
    EXPECT_STREQ(e->what(), "test error");
  }
}

// Ports test_run.py::test_setting_strict_exception_groups (nursery strict over loose run)
TEST(TrioStrict, StrictNurseryOverridesALooseRun) {
  try {
    run_autojump(
        [] {
          open_nursery(NurseryOptions{.strict_exception_groups = true},
                       [](Nursery& n) { n.start_soon(raise_test_error); });
        },
        {.strict_exception_groups = false});
    FAIL() << "run() returned";
  } catch (const ExceptionGroup& group) {
    EXPECT_EQ(group.exceptions().size(), 1u);
  }
}

// Ports test_run.py::test_setting_strict_exception_groups (nursery loose over strict run)
TEST(TrioStrict, LooseNurseryOverridesAStrictRun) {
  try {
    run_autojump([] {
      open_nursery(NurseryOptions{.strict_exception_groups = false},
                   [](Nursery& n) { n.start_soon(raise_test_error); });
    });
    FAIL() << "run() returned";
  } catch (const ExceptionGroup&) {
    FAIL() << "a loose nursery wrapped a lone error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "test error");
  }
}

// Ports test_run.py::test_nursery_collapse: after its Cancelled leaves are stripped, a loose
// inner group of one collapses to its error; a strict one keeps its shape.
void check_nursery_collapse(std::optional<bool> inner_strict, bool expect_collapsed) {
  run_autojump([&] {
    try {
      open_nursery([&](Nursery& n) {
        n.start_soon(sleep_forever_task);
        n.start_soon(raise_test_error);
        open_nursery(NurseryOptions{.strict_exception_groups = inner_strict}, [&](Nursery& n2) {
          n2.start_soon(sleep_forever_task);
          n2.start_soon(raise_test_error);
          n.cancel_scope().cancel();
        });
      });
      ADD_FAILURE() << "open_nursery returned";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 2u) << group.what();
      EXPECT_FALSE(group.contains<Cancelled>());
      std::size_t bare = 0;
      std::size_t nested = 0;
      for (const std::exception_ptr& e : group.exceptions()) {
        if (const ExceptionGroup* inner = as<ExceptionGroup>(e)) {
          ++nested;
          ASSERT_EQ(inner->exceptions().size(), 1u);
          EXPECT_NE(as<std::runtime_error>(inner->exceptions()[0]), nullptr);
        } else if (as<std::runtime_error>(e) != nullptr) {
          ++bare;
        }
      }
      EXPECT_EQ(bare, expect_collapsed ? 2u : 1u);
      EXPECT_EQ(nested, expect_collapsed ? 0u : 1u);
    }
  });
}

TEST(TrioStrict, StrictInnerNurseryKeepsItsGroupAfterCancelledIsStripped) {
  check_nursery_collapse(true, /*expect_collapsed=*/false);
}

TEST(TrioStrict, DefaultInnerNurseryKeepsItsGroupAfterCancelledIsStripped) {
  check_nursery_collapse(std::nullopt, /*expect_collapsed=*/false);
}

TEST(TrioStrict, LooseInnerNurseryCollapsesAfterCancelledIsStripped) {
  check_nursery_collapse(false, /*expect_collapsed=*/true);
}

// test_TrioToken_run_sync_soon_crashes: a closure that throws crashes the run (InternalError
// naming its exception), but the run winds down as usual: main is cancelled and unwinds, and
// a closure queued after the crashing one still runs.
TEST(TrioToken, RunSyncSoonCrashCancelsMainAndLaterClosuresStillRun) {
  std::set<std::string> record;
  try {
    trellis::run([&] {
      RunToken token = lowlevel::current_run_token();
      token.run_sync_soon([] { throw std::out_of_range("nope"); });
      token.run_sync_soon([&] { record.insert("2nd run_sync_soon ran"); });
      try {
        sleep_forever();
      } catch (const Cancelled&) {
        record.insert("cancelled!");
        throw;
      }
    });
    ADD_FAILURE() << "run() returned";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  EXPECT_EQ(record, (std::set<std::string>{"2nd run_sync_soon ran", "cancelled!"}));
}

}  // namespace
}  // namespace trellis
