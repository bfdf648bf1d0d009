// Ports of the semantics of Trio's src/trio/_core/_tests/test_mock_clock.py: MockClock's
// frozen start, jump, rate, sleep_time_until (Trio's deadline_to_sleep_time), autojump, and
// the priority of wait_all_tasks_blocked over autojump.
//
// Method: Trio swaps the mock's real-time source for a fake; Trellis's MockClock reads the
// real monotonic clock, so the rate TESTs check continuity and scaling with small tolerances
// around short real sleeps, while everything virtual is asserted exactly. Autojump TESTs use
// threshold 0 (Trio's autojump_clock fixture) unless the Trio test sets another one.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

Time at(Duration d) {
  return Time(d);
}

// Real elapsed time, for the TESTs that check that virtual time costs no real time.
class RealStopwatch {
 public:
  RealStopwatch() : start_(real_.now()) {}
  Duration elapsed() const { return real_.now() - start_; }

 private:
  posix::SystemClock real_;
  Time start_;
};

// ---- the clock itself ---------------------------------------------------------------------

// Ports test_mock_clock.py::test_mock_clock (initial state)
TEST(TrioMockClock, StartsFrozenAtZeroWithoutAutojump) {
  fakes::MockClock clock;
  EXPECT_EQ(clock.rate(), 0.0);
  EXPECT_EQ(clock.autojump_threshold(), Duration::max());
  EXPECT_EQ(clock.now(), at(0s));
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(clock.now(), at(0s));
  EXPECT_FALSE(clock.advances_on_its_own());
}

// Ports test_mock_clock.py::test_mock_clock (jump)
TEST(TrioMockClock, JumpMovesTimeForwardExactly) {
  fakes::MockClock clock;
  clock.jump(1200ms);
  EXPECT_EQ(clock.now(), at(1200ms));
}

// Ports test_mock_clock.py::test_mock_clock (jump backwards)
TEST(TrioMockClock, NegativeJumpIsRejectedAndChangesNothing) {
  fakes::MockClock clock;
  clock.jump(1200ms);
  try {
    clock.jump(-1s);
    FAIL() << "jump(-1s) did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("time can't go backwards"), std::string::npos) << e.what();
  }
  EXPECT_EQ(clock.now(), at(1200ms));
}

// Ports test_mock_clock.py::test_mock_clock (deadline_to_sleep_time while frozen)
TEST(TrioMockClock, FrozenClockSleepTimeIsZeroWhenDueAndForeverOtherwise) {
  fakes::MockClock clock;
  clock.jump(1200ms);
  EXPECT_EQ(clock.sleep_time_until(at(1100ms)), Duration::zero());
  EXPECT_EQ(clock.sleep_time_until(at(1200ms)), Duration::zero());
  EXPECT_GE(clock.sleep_time_until(at(1300ms)), Duration(999999s));
}

// Ports test_mock_clock.py::test_mock_clock (negative rate)
TEST(TrioMockClock, NegativeRateIsRejectedAndChangesNothing) {
  fakes::MockClock clock;
  EXPECT_THROW(clock.set_rate(-1), std::invalid_argument);
  EXPECT_EQ(clock.rate(), 0.0);
}

// Ports test_mock_clock.py::test_mock_clock (a rate change keeps the time continuous)
TEST(TrioMockClock, SettingTheRateKeepsTheCurrentTime) {
  fakes::MockClock clock;
  clock.jump(1200ms);
  clock.set_rate(2);
  EXPECT_EQ(clock.rate(), 2.0);
  const Duration drift = clock.now() - at(1200ms);
  EXPECT_GE(drift, Duration::zero());
  EXPECT_LT(drift, Duration(50ms));
  clock.set_rate(0);
  const Time frozen = clock.now();
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(clock.now(), frozen);
}

// Ports test_mock_clock.py::test_mock_clock (virtual time runs at `rate` times real time)
TEST(TrioMockClock, RateScalesRealTime) {
  fakes::MockClock clock;
  clock.set_rate(100);
  const Time before = clock.now();
  RealStopwatch stopwatch;
  std::this_thread::sleep_for(20ms);
  const Duration real = stopwatch.elapsed();
  const Duration virtual_elapsed = clock.now() - before;
  EXPECT_GE(virtual_elapsed, Duration(2s));  // 100 x 20 ms
  EXPECT_LE(virtual_elapsed, 100 * real + Duration(100ms));
  EXPECT_TRUE(clock.advances_on_its_own());
}

// Ports test_mock_clock.py::test_mock_clock (deadline_to_sleep_time divides by the rate)
TEST(TrioMockClock, SleepTimeUntilDividesTheDistanceByTheRate) {
  fakes::MockClock clock;
  clock.set_rate(2);
  Duration sleep_time = clock.sleep_time_until(clock.now() + 1s);
  EXPECT_LE(sleep_time, Duration(500ms));
  EXPECT_GT(sleep_time, Duration(450ms));
  EXPECT_EQ(clock.sleep_time_until(clock.now() - 1s), Duration::zero());
  clock.set_rate(0.5);
  sleep_time = clock.sleep_time_until(clock.now() + 1s);
  EXPECT_LE(sleep_time, Duration(2s));
  EXPECT_GT(sleep_time, Duration(1900ms));
}

// Ports test_mock_clock.py::test_mock_clock (jump while running)
TEST(TrioMockClock, JumpAddsToARunningClock) {
  fakes::MockClock clock;
  clock.set_rate(0.5);
  const Time before = clock.now();
  clock.jump(800ms);
  const Duration moved = clock.now() - before;
  EXPECT_GE(moved, Duration(800ms));
  EXPECT_LT(moved, Duration(850ms));
}

// Ports test_mock_clock.py::test_mock_clock_autojump (threshold validation)
TEST(TrioMockClock, NegativeAutojumpThresholdIsRejected) {
  fakes::MockClock clock;
  EXPECT_THROW(clock.set_autojump_threshold(-1ms), std::invalid_argument);
  EXPECT_EQ(clock.autojump_threshold(), Duration::max());
  clock.set_autojump_threshold(Duration::zero());
  EXPECT_EQ(clock.autojump_threshold(), Duration::zero());
}

// ---- autojump -----------------------------------------------------------------------------

// Ports test_mock_clock.py::test_mock_clock_autojump (exact virtual sleeps, fast in real time)
TEST(TrioAutojump, SleepsObserveExactVirtualTimesAndCostNoRealTime) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  RealStopwatch stopwatch;
  run(
      [] {
        Time virtual_start = current_time();
        for (int i = 0; i < 10; ++i) {
          sleep(std::chrono::seconds(10 * i));
          EXPECT_EQ(current_time(), virtual_start + std::chrono::seconds(10 * i));
          virtual_start = current_time();
        }
        EXPECT_EQ(current_time(), at(450s));
      },
      {.clock = &clock});
  EXPECT_LT(stopwatch.elapsed(), Duration(1s));
}

// Ports test_mock_clock.py::test_mock_clock_autojump (waiters wake before the threshold)
TEST(TrioAutojump, WaitAllTasksBlockedReturnsBeforeTheThresholdJumps) {
  fakes::MockClock clock;
  run(
      [&] {
        clock.set_autojump_threshold(20ms);
        open_nursery([&](Nursery& n) {
          n.start_soon([] { sleep(1000s); });
          const Time t = current_time();
          fakes::wait_all_tasks_blocked();
          EXPECT_EQ(current_time(), t);
          fakes::wait_all_tasks_blocked(10ms);
          EXPECT_EQ(current_time(), t);
          n.cancel_scope().cancel();
        });
      },
      {.clock = &clock});
}

// Ports test_mock_clock.py::test_mock_clock_autojump (a new threshold applies at once)
TEST(TrioAutojump, ThresholdChangedDuringTheRunAppliesAtOnce) {
  fakes::MockClock clock;
  RealStopwatch stopwatch;
  run(
      [&] {
        clock.set_autojump_threshold(10000s);
        fakes::wait_all_tasks_blocked();
        clock.set_autojump_threshold(Duration::zero());
        sleep(100000s);
        EXPECT_EQ(current_time(), at(100000s));
      },
      {.clock = &clock});
  EXPECT_LT(stopwatch.elapsed(), Duration(1s));
}

// Ports test_mock_clock.py::test_mock_clock_autojump_interference
TEST(TrioAutojump, ThresholdOfAClockThatIsNotTheRunsHasNoEffect) {
  fakes::MockClock clock;
  fakes::MockClock other;
  RealStopwatch stopwatch;
  run(
      [&] {
        clock.set_autojump_threshold(20ms);
        other.set_autojump_threshold(10ms);
        fakes::wait_all_tasks_blocked(15ms);
        EXPECT_EQ(current_time(), at(0s));
        sleep(100000s);
        EXPECT_EQ(current_time(), at(100000s));
      },
      {.clock = &clock});
  EXPECT_LT(stopwatch.elapsed(), Duration(1s));
  EXPECT_EQ(other.now(), at(0s));
}

// Ports test_mock_clock.py::test_mock_clock_autojump_preset
TEST(TrioAutojump, ThresholdSetBeforeTheRunIsPickedUp) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(100ms);
  clock.set_autojump_threshold(10ms);
  RealStopwatch stopwatch;
  run([] { sleep(10000s); }, {.clock = &clock});
  EXPECT_LT(stopwatch.elapsed(), Duration(1s));
  EXPECT_EQ(clock.now(), at(10000s));
}

// Ports test_mock_clock.py::test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0
TEST(TrioAutojump, WaitAllTasksBlockedWithZeroCushionWinsOverAutojumpZero) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  std::vector<std::string> record;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            sleep(100s);
            record.push_back("yawn");
          });
          n.start_soon([&] {
            fakes::wait_all_tasks_blocked();
            record.push_back("waiter woke at " +
                             std::to_string(current_time().time_since_epoch().count()));
            sleep(1000s);
            record.push_back("waiter done");
          });
        });
      },
      {.clock = &clock});
  EXPECT_EQ(record, (std::vector<std::string>{"waiter woke at 0", "yawn", "waiter done"}));
}

// Ports test_mock_clock.py::test_mock_clock_autojump_0_and_wait_all_tasks_blocked_nonzero
TEST(TrioAutojump, WaitAllTasksBlockedWithACushionWinsOverAutojumpZero) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  std::vector<std::string> record;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            sleep(100s);
            record.push_back("yawn");
          });
          n.start_soon([&] {
            fakes::wait_all_tasks_blocked(50ms);
            EXPECT_EQ(current_time(), at(0s));
            record.push_back("waiter done");
          });
        });
      },
      {.clock = &clock});
  EXPECT_EQ(record, (std::vector<std::string>{"waiter done", "yawn"}));
}

// Ports test_mock_clock.py::test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0 (the
// smallest cushion wakes first; trio-api.md §1.3)
TEST(TrioAutojump, SmallestCushionWakesFirstAndEqualCushionsTogether) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  WakeOrderPolicy wake_order;
  std::vector<std::string> record;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            fakes::wait_all_tasks_blocked(20ms);
            record.push_back("20ms");
          });
          n.start_soon([&] {
            fakes::wait_all_tasks_blocked(Duration::zero());
            record.push_back("0 a");
          });
          n.start_soon([&] {
            fakes::wait_all_tasks_blocked(Duration::zero());
            record.push_back("0 b");
          });
        });
      },
      {.clock = &clock, .policy = &wake_order});
  ASSERT_EQ(record.size(), 3u);
  EXPECT_EQ(record[2], "20ms");
}

}  // namespace
}  // namespace trellis
