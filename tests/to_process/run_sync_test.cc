// to_process::run_sync on real worker processes: results and errors round-trip, crashes
// give BrokenWorkerError and a new worker, no zombie and no descriptor outlives a run.
// Follows trio-parallel's _tests/test_impl.py and test_proc.py (results, exceptions,
// BrokenWorkerError on a dying worker, the cache replacing it).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "trellis/to_process.h"
#include "trellis/trellis.h"
#include "worker_functions.h"

namespace trellis::to_process {
namespace {

using testing::Point;
using namespace std::chrono_literals;

TEST(ToProcessRunSync, ResultsOfSeveralTypesRoundTrip) {
  run([] {
    EXPECT_EQ(run_sync<int>("add", 2, 3), 5);
    EXPECT_EQ(run_sync<std::string>("greet", "trellis"), "hello, trellis");
    EXPECT_EQ(run_sync<std::vector<int>>("reversed", std::vector<int>{1, 2, 3}),
              (std::vector<int>{3, 2, 1}));
    const std::map<std::string, int> expected{{"a", 1}, {"abc", 3}};
    EXPECT_EQ(
        (run_sync<std::map<std::string, int>>("lengths", std::vector<std::string>{"abc", "a"})),
        expected);
    const Point p{1, 2, "p", {0.5, 1.5}};
    EXPECT_EQ(run_sync<Point>("moved", p, 10), (Point{11, 2, "p'", {0.5, 1.5}}));
    run_sync<void>("nothing");
    EXPECT_EQ(run_sync<int>("twice", 21), 42);
    // Larger than a pipe's buffer both ways.
    const std::string big(3 << 20, 'b');
    EXPECT_EQ(run_sync<std::string>("greet", big), "hello, " + big);
  });
}

TEST(ToProcessRunSync, WhatAFunctionPrintsOrReadsDoesNotTouchTheProtocol) {
  run([] {
    EXPECT_EQ(run_sync<int>("noisy", 7), 7);
    EXPECT_EQ(run_sync<int>("noisy", 8), 8);
  });
}

TEST(ToProcessRunSync, OutsideARunIsAUsageError) {
  EXPECT_THROW(run_sync<int>("add", 1, 2), UsageError);
  EXPECT_THROW(current_default_worker_limiter(), UsageError);
}

TEST(ToProcessRunSync, RunsInAnotherProcessAndReusesIt) {
  run([] {
    const int first = run_sync<int>("pid");
    EXPECT_NE(first, static_cast<int>(::getpid()));
    EXPECT_EQ(run_sync<int>("pid"), first);  // the idle worker serves the next call
  });
}

TEST(ToProcessRunSync, AnExceptionComesBackAsWorkerErrorAndTheWorkerStays) {
  run([] {
    const int before = run_sync<int>("pid");
    try {
      run_sync<int>("throws_out_of_range", 7);
      ADD_FAILURE() << "no exception";
    } catch (const WorkerError& e) {
      EXPECT_EQ(e.type_name(), "std::out_of_range");
      EXPECT_EQ(e.message(), "index 7");
      EXPECT_NE(std::string(e.what()).find("index 7"), std::string::npos);
    }
    EXPECT_EQ(run_sync<int>("pid"), before);
  });
}

TEST(ToProcessRunSync, UnknownFunctionAndWrongArgumentsAreClearWorkerErrors) {
  run([] {
    try {
      run_sync<int>("no_such_function", 1);
      ADD_FAILURE() << "no exception";
    } catch (const WorkerError& e) {
      EXPECT_EQ(e.type_name(), "trellis::to_process::UnknownFunctionError");
      EXPECT_NE(e.message().find("no_such_function"), std::string::npos);
    }
    try {
      run_sync<int>("add", "two", 3);
      ADD_FAILURE() << "no exception";
    } catch (const WorkerError& e) {
      EXPECT_EQ(e.type_name(), "trellis::to_process::ArgumentError");
      EXPECT_NE(e.message().find("'add'"), std::string::npos);
    }
    try {
      run_sync<int>("add", 1);
      ADD_FAILURE() << "no exception";
    } catch (const WorkerError& e) {
      EXPECT_NE(e.message().find("expected 2 arguments"), std::string::npos);
    }
    EXPECT_THROW(run_sync<std::string>("add", 1, 2), UsageError);  // the result is an int
    EXPECT_EQ(run_sync<int>("add", 1, 2), 3);  // the worker is fine after all that
  });
}

struct CrashCase {
  const char* function;
  int argument;
  const char* expected;  // in what()
};

class ToProcessCrash : public ::testing::TestWithParam<CrashCase> {};

TEST_P(ToProcessCrash, GivesBrokenWorkerErrorNamingItAndThePoolReplacesTheWorker) {
  const CrashCase c = GetParam();
  run([&] {
    WorkerContext context;
    Options options{.context = &context};
    const int before = run_sync<int>(options, "pid");
    try {
      if (std::string(c.function) == "exit") {
        run_sync<int>(options, c.function, c.argument);
      } else {
        run_sync<int>(options, c.function);
      }
      ADD_FAILURE() << "no exception";
    } catch (const BrokenWorkerError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(before)), std::string::npos) << e.what();
#if !defined(TRELLIS_ASAN)  // ASan turns SIGSEGV into its report and exit status 1
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
#endif
    }
    const int after = run_sync<int>(options, "pid");
    EXPECT_NE(after, before);
    EXPECT_EQ(context.statistics().workers_started, 2u);
    EXPECT_EQ(context.statistics().workers_stopped, 1u);
    EXPECT_EQ(testing::live_children(), std::set<int>{after});  // the crashed one is reaped
  });
}

INSTANTIATE_TEST_SUITE_P(Kinds, ToProcessCrash,
                         ::testing::Values(CrashCase{"abort", 0, "SIGABRT"},
                                           CrashCase{"segfault", 0, "SIGSEGV"},
                                           CrashCase{"sigkill", 0, "SIGKILL"},
                                           CrashCase{"exit", 3, "exited with status 3"},
                                           CrashCase{"exit", 0, "exited with status 0"}),
                         [](const auto& info) {
                           return std::string(info.param.function) +
                                  std::to_string(info.param.argument);
                         });

// The state letter of /proc/<pid>/stat ('Z' for a zombie), or 0 if there is no such process.
char process_state(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  const std::size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? 0 : line[paren + 2];
}

// trio-parallel prunes dead cached workers: a worker killed while idle is not the next
// call's failure. Here it is found when the call breaks its pipe, before the call reached it.
TEST(ToProcessRunSync, AWorkerKilledWhileIdleIsReplacedWithoutAnError) {
  run([] {});  // what a first run keeps open for the process's life (the signal hub's pipe)
  const std::size_t fds_before = testing::open_fd_count();
  run([] {
    WorkerContext context;
    Options options{.context = &context};
    const int before = run_sync<int>(options, "pid");
    ASSERT_EQ(::kill(before, SIGKILL), 0);
    for (int i = 0; i < 2000 && process_state(before) != 'Z'; ++i) sleep(1ms);
    ASSERT_EQ(process_state(before), 'Z') << "the killed worker did not exit";
    const int after = run_sync<int>(options, "pid");
    EXPECT_NE(after, before);
    EXPECT_EQ(context.statistics().workers_started, 2u);
    EXPECT_EQ(context.statistics().workers_stopped, 1u);
    EXPECT_EQ(testing::live_children(), std::set<int>{after});  // the killed one is reaped
  });
  EXPECT_TRUE(testing::live_children().empty());
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST(ToProcessRunSync, AThousandCallsLeaveNoZombieAndNoDescriptor) {
  // A first run opens what the process keeps for every later run (the signal hub's pipe).
  run([] { run_sync<int>("add", 0, 0); });
  const std::size_t fds_before = testing::open_fd_count();
  std::set<int> pids;
  run([&] {
    for (int i = 0; i < 1000; ++i) {
      if (i % 250 == 125) {
        EXPECT_THROW(run_sync<int>("exit", 1), BrokenWorkerError);
        continue;
      }
      ASSERT_EQ(run_sync<int>("add", i, 1), i + 1);
      if (i % 100 == 0) pids.insert(run_sync<int>("pid"));
    }
    EXPECT_GE(pids.size(), 2u);  // crashed workers were replaced
  });
  EXPECT_TRUE(testing::live_children().empty());
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST(ToProcessRunSync, WhenRunReturnsEveryWorkerIsStoppedAndReaped) {
  std::set<int> pids;
  run([&] {
    CapacityLimiter limiter(3);
    WorkerContext context({.max_workers = 3});
    Options options{.limiter = &limiter, .context = &context};
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 3; ++i) {
        nursery.start_soon([&] { run_sync<int>(options, "add", 1, 1); });
      }
    });
    for (int i = 0; i < 3; ++i) pids.insert(run_sync<int>("pid"));  // the run's default pool
    EXPECT_FALSE(testing::live_children().empty());
  });
  EXPECT_TRUE(testing::live_children().empty());
  for (int pid : pids) EXPECT_NE(::kill(pid, 0), 0) << pid;
}

}  // namespace
}  // namespace trellis::to_process
