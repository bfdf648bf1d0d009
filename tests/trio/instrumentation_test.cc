// Ports of the semantics of Trio's src/trio/_core/_tests/test_instrumentation.py: the order of
// instrument hooks (as listed in trellis/core/instrument.h), adding and removing instruments
// during a run, an instrument that throws being removed while the run goes on, and the
// context each hook runs in.
//
// Method: a recorder instrument logs (hook, task) pairs; each TEST filters the log down to the
// tasks it created and compares it with the exact sequence Trio expects. A FIFO batch policy
// stands in for Trio's set-per-batch comparisons. Python-only checks (hooks looked up by
// attribute, properties that raise) are not ported.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

using Event = std::pair<std::string, const lowlevel::Task*>;
using Events = std::vector<Event>;

// Trio's TaskRecorder. Trio's recorder also asserts, in the step hooks, that the stepping task
// is the current task; here mismatches are counted instead, because a hook that throws is
// removed and would hide the rest of the record.
class TaskRecorder : public Instrument {
 public:
  void before_run() override { record.emplace_back("before_run", nullptr); }
  void after_run() override { record.emplace_back("after_run", nullptr); }
  void task_scheduled(lowlevel::Task& task) override { record.emplace_back("schedule", &task); }
  void before_task_step(lowlevel::Task& task) override {
    record.emplace_back("before", &task);
    check_current(task);
  }
  void after_task_step(lowlevel::Task& task) override {
    record.emplace_back("after", &task);
    check_current(task);
  }

  // The record restricted to `tasks` (and the run's own hooks).
  Events filter(const std::set<const lowlevel::Task*>& tasks) const {
    Events out;
    for (const Event& event : record) {
      if (event.second == nullptr || tasks.count(event.second) != 0) out.push_back(event);
    }
    return out;
  }

  Events record;
  int not_current = 0;

 private:
  void check_current(const lowlevel::Task& task) {
    try {
      if (&lowlevel::current_task() != &task) ++not_current;
    } catch (...) {
      ++not_current;
    }
  }
};

// Ports test_instrumentation.py::test_instruments (the hook sequence of one child task)
TEST(TrioInstrumentation, HookSequenceOfACheckpointingChild) {
  TaskRecorder r1;
  const lowlevel::Task* task = nullptr;
  WakeOrderPolicy wake_order;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            task = &lowlevel::current_task();
            for (int i = 0; i < 5; ++i) checkpoint();
          });
        });
      },
      {.policy = &wake_order, .instruments = {&r1}});
  ASSERT_NE(task, nullptr);
  // Five checkpoints make six steps. A checkpoint reschedules the task before its
  // after_task_step fires.
  Events expected = {{"before_run", nullptr}, {"schedule", task}};
  for (int i = 0; i < 5; ++i) {
    expected.insert(expected.end(), {{"before", task}, {"schedule", task}, {"after", task}});
  }
  expected.insert(expected.end(), {{"before", task}, {"after", task}, {"after_run", nullptr}});
  EXPECT_EQ(r1.filter({task}), expected);
}

// Ports test_instrumentation.py::test_instruments (replacing an instrument during the run)
TEST(TrioInstrumentation, InstrumentsCanBeRemovedAndAddedDuringTheRun) {
  TaskRecorder r1;
  TaskRecorder r2;
  TaskRecorder r3;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            for (int i = 0; i < 4; ++i) checkpoint();
            lowlevel::remove_instrument(r2);
            EXPECT_THROW(lowlevel::remove_instrument(r2), std::invalid_argument);
            lowlevel::add_instrument(r3);
            lowlevel::add_instrument(r3);  // idempotent
            checkpoint();
          });
        });
      },
      {.instruments = {&r1, &r2}});
  Events r2_then_r3 = r2.record;
  r2_then_r3.insert(r2_then_r3.end(), r3.record.begin(), r3.record.end());
  EXPECT_EQ(r1.record, r2_then_r3);
  EXPECT_FALSE(r2.record.empty());
  EXPECT_FALSE(r3.record.empty());
}

// Ports test_instrumentation.py::test_instruments (add is idempotent, also at run())
TEST(TrioInstrumentation, AnInstrumentListedTwiceIsCalledOnce) {
  TaskRecorder r;
  run([] {}, {.instruments = {&r, &r}});
  EXPECT_EQ(std::count(r.record.begin(), r.record.end(), Event{"before_run", nullptr}), 1);
  EXPECT_EQ(std::count(r.record.begin(), r.record.end(), Event{"after_run", nullptr}), 1);
}

// Ports test_instrumentation.py::test_instruments (removing an absent instrument)
TEST(TrioInstrumentation, RemovingAnAbsentInstrumentIsAnError) {
  TaskRecorder r;
  run([&] { EXPECT_THROW(lowlevel::remove_instrument(r), std::invalid_argument); });
}

// Ports test_instrumentation.py::test_instruments_interleave
TEST(TrioInstrumentation, TwoTasksInterleaveBatchByBatch) {
  TaskRecorder r;
  WakeOrderPolicy wake_order;
  const lowlevel::Task* t1 = nullptr;
  const lowlevel::Task* t2 = nullptr;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            t1 = &lowlevel::current_task();
            checkpoint();
          });
          n.start_soon([&] {
            t2 = &lowlevel::current_task();
            checkpoint();
          });
        });
      },
      {.policy = &wake_order, .instruments = {&r}});
  const Events expected = {
      {"before_run", nullptr},
      {"schedule", t1},
      {"schedule", t2},
      // batch 1
      {"before", t1},
      {"schedule", t1},
      {"after", t1},
      {"before", t2},
      {"schedule", t2},
      {"after", t2},
      // batch 2
      {"before", t1},
      {"after", t1},
      {"before", t2},
      {"after", t2},
      {"after_run", nullptr},
  };
  EXPECT_EQ(r.filter({t1, t2}), expected);
}

// Ports test_instrumentation.py::test_null_instrument
TEST(TrioInstrumentation, AnInstrumentWithNoHooksIsHarmless) {
  Instrument null_instrument;
  EXPECT_EQ(run(
                [] {
                  checkpoint();
                  return 3;
                },
                {.instruments = {&null_instrument}}),
            3);
}

// Ports test_instrumentation.py::test_instrument_before_after_run
TEST(TrioInstrumentation, BeforeRunAndAfterRunBracketTheRun) {
  class BeforeAfterRun : public Instrument {
   public:
    void before_run() override { record.push_back("before_run"); }
    void after_run() override { record.push_back("after_run"); }
    std::vector<std::string> record;
  } instrument;
  run([&] { instrument.record.push_back("main"); }, {.instruments = {&instrument}});
  EXPECT_EQ(instrument.record, (std::vector<std::string>{"before_run", "main", "after_run"}));
}

class SpawnExitRecorder : public Instrument {
 public:
  void task_spawned(lowlevel::Task& task) override { record.emplace_back("spawned", &task); }
  void task_scheduled(lowlevel::Task& task) override { record.emplace_back("schedule", &task); }
  void before_task_step(lowlevel::Task& task) override { record.emplace_back("before", &task); }
  void after_task_step(lowlevel::Task& task) override { record.emplace_back("after", &task); }
  void task_exited(lowlevel::Task& task) override { record.emplace_back("exited", &task); }
  Events only(const lowlevel::Task* task) const {
    Events out;
    std::copy_if(record.begin(), record.end(), std::back_inserter(out),
                 [&](const Event& e) { return e.second == task; });
    return out;
  }
  Events record;
};

// Ports test_instrumentation.py::test_instrument_task_spawn_exit
TEST(TrioInstrumentation, MainTaskIsSpawnedAndExits) {
  SpawnExitRecorder recorder;
  const lowlevel::Task* main_task =
      run([] { return &lowlevel::current_task(); }, {.instruments = {&recorder}});
  const Events& r = recorder.record;
  EXPECT_NE(std::find(r.begin(), r.end(), Event{"spawned", main_task}), r.end());
  EXPECT_NE(std::find(r.begin(), r.end(), Event{"exited", main_task}), r.end());
}

// Ports test_instrumentation.py::test_instrument_task_spawn_exit (the order instrument.h
// documents: spawned then scheduled; a last step is before, exited, after)
TEST(TrioInstrumentation, SpawnAndExitHooksComeInTheDocumentedOrder) {
  SpawnExitRecorder recorder;
  const lowlevel::Task* child = nullptr;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            child = &lowlevel::current_task();
            checkpoint();
          });
        });
      },
      {.instruments = {&recorder}});
  const Events expected = {{"spawned", child},  {"schedule", child}, {"before", child},
                           {"schedule", child}, {"after", child},    {"before", child},
                           {"exited", child},   {"after", child}};
  EXPECT_EQ(recorder.only(child), expected);
}

class BrokenInstrument : public Instrument {
 public:
  explicit BrokenInstrument(std::vector<std::string>* record) : record_(record) {}
  void task_scheduled(lowlevel::Task&) override {
    record_->push_back("scheduled");
    throw std::runtime_error("oops");
  }

 private:
  std::vector<std::string>* record_;
};

// Ports test_instrumentation.py::test_instruments_crash
TEST(TrioInstrumentation, ThrowingInstrumentIsRemovedAndTheRunGoesOn) {
  std::vector<std::string> record;
  TaskRecorder r;
  BrokenInstrument broken(&record);
  testing::internal::CaptureStderr();
  const lowlevel::Task* main_task = run(
      [&] {
        record.push_back("main ran");
        return &lowlevel::current_task();
      },
      {.instruments = {&r, &broken}});
  const std::string stderr_output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(record, (std::vector<std::string>{"scheduled", "main ran"}));
  // The other instrument kept going.
  EXPECT_NE(std::find(r.record.begin(), r.record.end(), Event{"after", main_task}), r.record.end());
  EXPECT_NE(std::find(r.record.begin(), r.record.end(), Event{"after_run", nullptr}),
            r.record.end());
  // The error was printed.
  EXPECT_NE(stderr_output.find("oops"), std::string::npos) << stderr_output;
}

// Ports test_instrumentation.py::test_instruments_crash (no call after the first throw)
TEST(TrioInstrumentation, ThrowingInstrumentIsNeverCalledAgain) {
  std::vector<std::string> record;
  BrokenInstrument broken(&record);
  testing::internal::CaptureStderr();
  run(
      [] {
        open_nursery([](Nursery& n) {
          for (int i = 0; i < 3; ++i) n.start_soon([] { checkpoint(); });
        });
      },
      {.instruments = {&broken}});
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(record, std::vector<std::string>{"scheduled"});
}

// Ports test_instrumentation.py::test_instruments_monkeypatch (removing stops the hooks,
// adding again resumes them)
TEST(TrioInstrumentation, RemovedInstrumentGetsNoHooksUntilAddedAgain) {
  TaskRecorder r;
  run(
      [&] {
        const lowlevel::Task* me = &lowlevel::current_task();
        auto steps = [&] {
          return std::count(r.record.begin(), r.record.end(), Event{"before", me});
        };
        lowlevel::remove_instrument(r);
        const auto before_removal = steps();
        checkpoint();
        checkpoint();
        EXPECT_EQ(steps(), before_removal);
        lowlevel::add_instrument(r);
        checkpoint();
        checkpoint();
        EXPECT_EQ(steps(), before_removal + 2);
      },
      {.instruments = {&r}});
}

// Ports test_instrumentation.py::test_instrument_call_trio_context (every hook runs inside
// the run, and every hook is called)
TEST(TrioInstrumentation, EveryHookIsCalledInsideTheRun) {
  class ContextChecker : public Instrument {
   public:
    void before_run() override { note("before_run"); }
    void after_run() override { note("after_run"); }
    void task_spawned(lowlevel::Task&) override { note("task_spawned"); }
    void task_scheduled(lowlevel::Task&) override { note("task_scheduled"); }
    void before_task_step(lowlevel::Task&) override { note("before_task_step"); }
    void after_task_step(lowlevel::Task&) override { note("after_task_step"); }
    void task_exited(lowlevel::Task&) override { note("task_exited"); }
    void before_io_wait(Duration) override { note("before_io_wait"); }
    void after_io_wait(Duration) override { note("after_io_wait"); }
    std::set<std::string> called;
    std::set<std::string> outside_run;

   private:
    void note(const std::string& hook) {
      called.insert(hook);
      if (!lowlevel::in_run()) outside_run.insert(hook);
    }
  } checker;
  run(
      [] {
        checkpoint();
        open_nursery([](Nursery& n) { n.start_soon([] { checkpoint(); }); });
      },
      {.instruments = {&checker}});
  EXPECT_EQ(checker.called,
            (std::set<std::string>{"before_run", "after_run", "task_spawned", "task_scheduled",
                                   "before_task_step", "after_task_step", "task_exited",
                                   "before_io_wait", "after_io_wait"}));
  EXPECT_TRUE(checker.outside_run.empty());
}

// Ports test_instrumentation.py::test_instrument_call_trio_context and the current-task
// assertion of test_instruments' TaskRecorder: before_task_step, after_task_step and
// task_exited run in the context of the stepping task.
TEST(TrioInstrumentation, StepHooksRunAsTheSteppingTask) {
  class CurrentTaskChecker : public Instrument {
   public:
    void before_task_step(lowlevel::Task& task) override { check("before_task_step", task); }
    void after_task_step(lowlevel::Task& task) override { check("after_task_step", task); }
    void task_exited(lowlevel::Task& task) override { check("task_exited", task); }
    std::set<std::string> checked;
    std::set<std::string> wrong;

   private:
    void check(const std::string& hook, const lowlevel::Task& task) {
      checked.insert(hook);
      try {
        if (&lowlevel::current_task() != &task) wrong.insert(hook + ": another task");
      } catch (const std::exception& e) {
        wrong.insert(hook + ": " + e.what());
      }
    }
  } checker;
  run(
      [] {
        checkpoint();
        open_nursery([](Nursery& n) { n.start_soon([] { checkpoint(); }); });
      },
      {.instruments = {&checker}});
  EXPECT_EQ(checker.checked.size(), 3u);
  EXPECT_TRUE(checker.wrong.empty()) << ::testing::PrintToString(checker.wrong);
}

}  // namespace
}  // namespace trellis
