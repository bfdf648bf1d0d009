// Ports of the semantics of Trio's src/trio/_tests/test_timeouts.py: sleep, sleep_until,
// sleep_forever, move_on_after / move_on_at, fail_after / fail_at, shielded timeouts and
// argument validation.
//
// Method: Trio's versions measure real time with a fudge factor; here every run uses a
// MockClock with autojump threshold 0 (Trio's autojump_clock fixture), so each TEST asserts
// exact virtual times instead. Trellis has no NaN durations and no relative (unentered)
// deadlines, so those checks are not ported; a Trio timeout's `shield=True` is written as a
// CancelScope(deadline, /*shield=*/true).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <utility>

#include "autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

Time at(Duration d) {
  return Time(d);
}

// Ports test_timeouts.py::test_sleep (sleep_until)
TEST(TrioTimeouts, SleepUntilWakesExactlyAtTheDeadline) {
  run_autojump([] {
    sleep_until(current_time() + 1s);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_sleep (sleep)
TEST(TrioTimeouts, SleepWakesExactlyAfterTheDuration) {
  run_autojump([] {
    sleep(1s);
    EXPECT_EQ(current_time(), at(1s));
    sleep(250ms);
    EXPECT_EQ(current_time(), at(1250ms));
  });
}

// Ports test_timeouts.py::test_sleep (sleep(0) is a checkpoint)
TEST(TrioTimeouts, SleepZeroIsACheckpoint) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    const auto cancel_points = task.cancel_points();
    const auto schedule_points = task.schedule_points();
    sleep(0s);
    EXPECT_GT(task.cancel_points(), cancel_points);
    EXPECT_GT(task.schedule_points(), schedule_points);
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_timeouts.py::test_sleep (trio-api.md §1: a blocking call that returns normally
// is a full checkpoint, so assert_checkpoints around sleep(d) passes)
TEST(TrioTimeouts, BlockingSleepIsAScheduleAndACancelPoint) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    const auto cancel_points = task.cancel_points();
    const auto schedule_points = task.schedule_points();
    sleep(1s);
    EXPECT_GT(task.cancel_points(), cancel_points);
    EXPECT_GT(task.schedule_points(), schedule_points);
  });
}

// Ports test_timeouts.py::test_sleep (the trivial move_on_at)
TEST(TrioTimeouts, SleepZeroRaisesInsideAMoveOnAtNow) {
  run_autojump([] {
    bool raised = false;
    move_on_at(current_time(), [&] {
      try {
        sleep(0s);
      } catch (const Cancelled&) {
        raised = true;
      }
    });
    EXPECT_TRUE(raised);
  });
}

// Ports test_timeouts.py::test_sleep (trio-api.md §1: a past deadline is still a checkpoint)
TEST(TrioTimeouts, SleepUntilAPastDeadlineIsACheckpointThatTakesNoTime) {
  run_autojump([] {
    sleep(5s);
    lowlevel::Task& task = lowlevel::current_task();
    const auto cancel_points = task.cancel_points();
    const auto schedule_points = task.schedule_points();
    sleep_until(at(1s));
    EXPECT_EQ(current_time(), at(5s));
    EXPECT_GT(task.cancel_points(), cancel_points);
    EXPECT_GT(task.schedule_points(), schedule_points);
  });
}

// Ports test_timeouts.py::test_sleep (sleep is cancellable)
TEST(TrioTimeouts, SleepInACancelledScopeRaises) {
  run_autojump([] {
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      EXPECT_THROW(sleep(1s), Cancelled);
    });
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_timeouts.py::test_move_on_after
TEST(TrioTimeouts, MoveOnAfterStopsTheBodyAtItsDeadline) {
  run_autojump([] {
    const bool completed = move_on_after(1s, [] { sleep(100s); });
    EXPECT_FALSE(completed);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_move_on_after (a body that finishes in time)
TEST(TrioTimeouts, MoveOnAfterReturnsTheBodysResultWhenInTime) {
  run_autojump([] {
    std::optional<int> result = move_on_after(10s, [] {
      sleep(1s);
      return 42;
    });
    EXPECT_EQ(result, 42);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_move_on_after (a body that is cut short)
TEST(TrioTimeouts, MoveOnAfterReturnsNulloptWhenCutShort) {
  run_autojump([] {
    std::optional<int> result = move_on_after(1s, [] {
      sleep(10s);
      return 42;
    });
    EXPECT_EQ(result, std::nullopt);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_move_on_after (trio-api.md §4: move_on_after(0) cancels on entry)
TEST(TrioTimeouts, MoveOnAfterZeroCancelsTheFirstCheckpoint) {
  run_autojump([] {
    bool reached_after_checkpoint = false;
    const bool completed = move_on_after(0s, [&] {
      checkpoint();
      reached_after_checkpoint = true;
    });
    EXPECT_FALSE(completed);
    EXPECT_FALSE(reached_after_checkpoint);
  });
}

// Ports test_timeouts.py::test_timeout_deadline_on_entry (the deadline counts from entry)
TEST(TrioTimeouts, MoveOnAfterDeadlineIsComputedWhenItStarts) {
  fakes::MockClock clock;
  run(
      [&] {
        clock.jump(3s);
        const Time start = current_time();
        move_on_after(5s, [&] { EXPECT_EQ(current_effective_deadline(), start + 5s); });
      },
      {.clock = &clock});
}

// Ports test_timeouts.py::test_cannot_wake_sleep_forever
TEST(TrioTimeouts, WakingSleepForeverByHandIsAnError) {
  run_autojump([] {
    lowlevel::Task& task = lowlevel::current_task();
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        checkpoint();
        lowlevel::reschedule(task);
      });
      // Trio raises RuntimeError; Trellis maps Trio's misuse RuntimeErrors to UsageError.
      EXPECT_THROW(sleep_forever(), UsageError);
    });
  });
}

// Ports test_timeouts.py::test_context_shields_from_outer (move_on_after(shield=True))
TEST(TrioTimeouts, ShieldedTimeoutScopeIgnoresOuterCancellation) {
  run_autojump([] {
    CancelScope outer;
    outer.run([&] {
      CancelScope inner(current_time() + 1s, /*shield=*/true);
      inner.run([&] {
        outer.cancel();
        EXPECT_NO_THROW(checkpoint_if_cancelled());
        EXPECT_NO_THROW(checkpoint());
        inner.set_shield(false);
        EXPECT_THROW(checkpoint(), Cancelled);
      });
    });
  });
}

// Ports test_timeouts.py::test_move_on_after_moves_on_even_if_shielded
TEST(TrioTimeouts, ShieldedMoveOnAfterStillExpires) {
  run_autojump([] {
    CancelScope outer;
    CancelScope inner(current_time() + 1s, /*shield=*/true);
    outer.run([&] {
      inner.run([&] {
        outer.cancel();
        sleep_forever();
      });
    });
    EXPECT_TRUE(inner.cancelled_caught());
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail_after_fails_even_if_shielded (a shield between fail_after
// and the cancelled outer scope stands in for fail_after(shield=True))
TEST(TrioTimeouts, FailAfterBehindAShieldStillFails) {
  run_autojump([] {
    CancelScope outer;
    EXPECT_THROW(outer.run([&] {
      CancelScope shield(kNoDeadline, /*shield=*/true);
      shield.run([&] {
        outer.cancel();
        fail_after(1s, [] { sleep_forever(); });
      });
    }),
                 TooSlowError);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail (fail_at that expires)
TEST(TrioTimeouts, FailAtThrowsTooSlowAtTheDeadline) {
  run_autojump([] {
    EXPECT_THROW(fail_at(current_time() + 1s, [] { sleep(100s); }), TooSlowError);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail (fail_at in time)
TEST(TrioTimeouts, FailAtIsSilentWhenTheBodyFinishesInTime) {
  run_autojump([] {
    EXPECT_NO_THROW(fail_at(current_time() + 100s, [] { sleep(0s); }));
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_timeouts.py::test_fail (fail_after that expires)
TEST(TrioTimeouts, FailAfterThrowsTooSlowAfterTheDuration) {
  run_autojump([] {
    EXPECT_THROW(fail_after(1s, [] { sleep(100s); }), TooSlowError);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail (fail_after in time, with a result)
TEST(TrioTimeouts, FailAfterReturnsTheBodysResultWhenInTime) {
  run_autojump([] {
    const int result = fail_after(100s, [] {
      sleep(0s);
      return 7;
    });
    EXPECT_EQ(result, 7);
  });
}

// Ports test_timeouts.py::test_fail (trio-api.md §4: no TooSlowError without a checkpoint)
TEST(TrioTimeouts, FailAfterIsSilentIfTheDeadlinePassedWithoutACheckpoint) {
  fakes::MockClock clock;
  run([&] { EXPECT_NO_THROW(fail_after(1s, [&] { clock.jump(2s); })); }, {.clock = &clock});
}

// Ports test_timeouts.py::test_fail (trio-api.md §4: nested scopes expiring at one instant)
TEST(TrioTimeouts, OuterMoveOnCatchesAnInnerFailAfterOfTheSameInstant) {
  run_autojump([] {
    CancelScope outer(current_time() + 1s);
    outer.run([] { fail_after(1s, [] { sleep_forever(); }); });  // no TooSlowError
    EXPECT_TRUE(outer.cancelled_caught());
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail (same, through move_on_after itself)
TEST(TrioTimeouts, MoveOnAfterAroundFailAfterOfTheSameDurationMovesOn) {
  run_autojump([] {
    const bool completed = move_on_after(1s, [] { fail_after(1s, [] { sleep_forever(); }); });
    EXPECT_FALSE(completed);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_fail (the inner, earlier fail_after wins)
TEST(TrioTimeouts, EarlierInnerFailAfterThrowsThroughALaterMoveOn) {
  run_autojump([] {
    EXPECT_THROW(move_on_after(2s, [] { fail_after(1s, [] { sleep_forever(); }); }), TooSlowError);
    EXPECT_EQ(current_time(), at(1s));
  });
}

// Ports test_timeouts.py::test_timeouts_raise_value_error (sleep)
TEST(TrioTimeouts, NegativeSleepIsInvalid) {
  run_autojump([] {
    EXPECT_THROW(sleep(-1s), std::invalid_argument);
    EXPECT_EQ(current_time(), at(0s));
  });
}

// Ports test_timeouts.py::test_timeouts_raise_value_error (move_on_after)
TEST(TrioTimeouts, NegativeMoveOnAfterIsInvalidAndSkipsTheBody) {
  run_autojump([] {
    bool ran = false;
    EXPECT_THROW(move_on_after(-1s, [&] { ran = true; }), std::invalid_argument);
    EXPECT_FALSE(ran);
  });
}

// Ports test_timeouts.py::test_timeouts_raise_value_error (fail_after)
TEST(TrioTimeouts, NegativeFailAfterIsInvalidAndSkipsTheBody) {
  run_autojump([] {
    bool ran = false;
    EXPECT_THROW(fail_after(-1s, [&] { ran = true; }), std::invalid_argument);
    EXPECT_FALSE(ran);
  });
}

// Ports test_timeouts.py::test_timeouts_raise_value_error (deadlines may lie in the past)
TEST(TrioTimeouts, PastDeadlinesAreAllowed) {
  run_autojump([] {
    sleep(2s);
    EXPECT_FALSE(move_on_at(at(1s), [] { checkpoint(); }));
    EXPECT_THROW(fail_at(at(1s), [] { checkpoint(); }), TooSlowError);
    EXPECT_EQ(current_time(), at(2s));
  });
}

}  // namespace
}  // namespace trellis
