// Tests of deadlock detection: a run that can never make progress fails loudly, with a
// report naming every blocked task and what it waits on, and unwinds its tasks first.
//
// Method: build runs where nothing can wake any task (parked forever with no deadline, or
// with deadlines on a frozen MockClock), and check DeadlockError's message and that RAII
// cleanup in the blocked tasks ran before run() threw.
#include <gtest/gtest.h>

#include <array>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

void park_forever(const char* what) {
  lowlevel::wait_task_rescheduled([](std::exception_ptr) { return lowlevel::Abort::kSucceeded; },
                                  what);
}

TEST(Deadlock, ReportsEveryBlockedTaskByName) {
  try {
    run([] {
      open_nursery([](Nursery& n) {
        n.start_soon(SpawnOptions{.name = "waiter-a"}, [] { park_forever("the event"); });
        n.start_soon(SpawnOptions{.name = "waiter-b"}, [] { park_forever("the lock"); });
      });
    });
    FAIL() << "run() returned";
  } catch (const DeadlockError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("deadlock"), std::string::npos) << message;
    EXPECT_NE(message.find("task 'waiter-a'"), std::string::npos) << message;
    EXPECT_NE(message.find("waiting on the event"), std::string::npos) << message;
    EXPECT_NE(message.find("task 'waiter-b'"), std::string::npos) << message;
    EXPECT_NE(message.find("waiting on the lock"), std::string::npos) << message;
  }
}

TEST(Deadlock, BlockedTasksAreUnwoundBeforeRunThrows) {
  int destructors_run = 0;
  struct Cleanup {
    int& count;
    ~Cleanup() { ++count; }
  };
  EXPECT_THROW(run([&] {
                 open_nursery([&](Nursery& n) {
                   for (int i = 0; i < 3; ++i) {
                     n.start_soon([&] {
                       Cleanup cleanup{destructors_run};
                       park_forever("nothing");
                     });
                   }
                 });
               }),
               DeadlockError);
  EXPECT_EQ(destructors_run, 3);
}

TEST(Deadlock, ShieldedTasksAreUnwoundToo) {
  bool cleaned_up = false;
  EXPECT_THROW(run([&] {
                 CancelScope shield;
                 shield.set_shield(true);
                 shield.run([&] {
                   struct Cleanup {
                     bool& flag;
                     ~Cleanup() { flag = true; }
                   } cleanup{cleaned_up};
                   park_forever("shielded wait");
                 });
               }),
               DeadlockError);
  EXPECT_TRUE(cleaned_up);
}

TEST(Deadlock, FrozenMockClockWithPendingSleepIsADeadlock) {
  fakes::MockClock frozen;  // rate 0, no autojump: time never moves
  try {
    run([] { sleep(1s); }, {.clock = &frozen});
    FAIL() << "run() returned";
  } catch (const DeadlockError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("does not advance on its own"), std::string::npos) << message;
    EXPECT_NE(message.find("waiting on sleep"), std::string::npos) << message;
    EXPECT_NE(message.find("deadline at t=1000000000ns"), std::string::npos) << message;
  }
}

TEST(Deadlock, AutojumpingClockIsNotADeadlock) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run([] { sleep(24h); }, {.clock = &clock});
  SUCCEED();
}

// An autojumping clock with no deadline has nothing to jump to: a task waiting for data that
// never comes (here: a memory stream nobody writes) is a deadlock, reported, not a hang.
TEST(Deadlock, AutojumpWithNoDeadlineIsADeadlockNotAHang) {
  for (const Duration threshold : {Duration::zero(), Duration(10ms)}) {
    fakes::MockClock clock;
    clock.set_autojump_threshold(threshold);
    try {
      run(
          [] {
            auto [a, b] = fakes::memory_stream_pair();
            std::array<std::byte, 16> buffer;
            (void)b.receive_some(buffer);
          },
          {.clock = &clock});
      ADD_FAILURE() << "run() returned";
    } catch (const DeadlockError& error) {
      EXPECT_NE(std::string(error.what()).find("deadlock"), std::string::npos);
    }
  }
}

TEST(Deadlock, TaskBlockingAgainInCleanupIsStillTornDown) {
  int rounds = 0;
  EXPECT_THROW(run([&] {
                 try {
                   park_forever("first wait");
                 } catch (const Cancelled&) {
                   ++rounds;
                   // Block again while being torn down: costs another teardown round.
                   CancelScope shield;
                   shield.set_shield(true);
                   shield.run([] { park_forever("second wait"); });
                   throw;
                 }
               }),
               DeadlockError);
  EXPECT_EQ(rounds, 1);
}

}  // namespace
}  // namespace trellis
