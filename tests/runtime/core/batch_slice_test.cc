// Tests of batch slicing: a long batch runs in slices of lowlevel::kBatchSliceSteps task steps,
// with a poll step between slices, so timers and I/O that come due while thousands of tasks
// are runnable wait at most one slice, and every task of a batch still runs once per round.
//
// Method: the clock is a MockClock that only moves when a task jumps it, so "when a timer
// came due" is a step of the batch; a shared counter of task steps measures how long the
// woken task waited, in steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/fakes/mock_clock.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kSlice = lowlevel::kBatchSliceSteps;
constexpr int kSpinners = 4000;
static_assert(kSpinners / 4 > static_cast<int>(kSlice));

struct Counts {
  std::int64_t steps = 0;     // task steps of the spinners so far
  std::int64_t due_at = -1;   // steps when the timer came due
  std::int64_t woke_at = -1;  // steps when the sleeper ran again
};

// kSpinners tasks each run `rounds` steps; one of them jumps the clock past a sleeper's
// deadline in the second round (the sleeper is asleep by then: it slept in the first).
Counts run_spinners_with_a_sleeper(std::uint64_t seed, int rounds) {
  fakes::MockClock clock;
  Counts counts;
  run(
      [&] {
        open_nursery([&](Nursery& nursery) {
          nursery.start_soon([&] {
            sleep(1s);
            counts.woke_at = counts.steps;
          });
          for (int i = 0; i < kSpinners; ++i) {
            nursery.start_soon([&, i] {
              for (int round = 0; round < rounds; ++round) {
                ++counts.steps;
                if (i == kSpinners / 2 && round == 1) {
                  clock.jump(1s);
                  counts.due_at = counts.steps;
                }
                checkpoint();
              }
            });
          }
        });
      },
      {.clock = &clock, .schedule_seed = seed});
  return counts;
}

TEST(BatchSlice, TimerDueInALongBatchWakesWithinOneSlice) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const Counts counts = run_spinners_with_a_sleeper(seed, 3);
    ASSERT_GE(counts.due_at, 0);
    ASSERT_GE(counts.woke_at, counts.due_at) << "seed " << seed;
    // Without slicing it waits for the rest of the batch: about kSpinners / 2 steps here.
    EXPECT_LE(counts.woke_at - counts.due_at, static_cast<std::int64_t>(kSlice)) << "seed " << seed;
    EXPECT_LT(counts.woke_at - counts.due_at, kSpinners / 4) << "seed " << seed;
  }
}

TEST(BatchSlice, EveryTaskStillRunsOncePerRound) {
  // Spinners log their steps while a task woken by a timer at every slice boundary keeps
  // being let in ahead of the batch's remainder: the k-th steps of all spinners still come
  // before any spinner's (k+1)-th.
  // Every spinner step moves a MockClock by the timer's period, so the timer is due at every
  // boundary after the one that woke it. (On the real clock a short sleep is flaky: on a slow
  // build, as under TSan, its deadline can pass before it parks, and sleep_until() then only
  // checkpoints, which sends the task to the next batch.)
  // 2,600 tasks: ten slice boundaries inside each round's batch (kBatchSliceSteps is 256),
  // so the timer wakes several times a round whatever the batch's order (put last, it sleeps
  // just before the batch's end and is not due there).
  constexpr int kTasks = 2600;
  constexpr int kRounds = 4;
  static constexpr Duration kPeriod = 1us;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    fakes::MockClock clock;
    std::vector<int> log;
    bool done = false;
    int timer_wakeups = 0;
    run(
        [&] {
          open_nursery([&](Nursery& nursery) {
            nursery.start_soon([&] {
              while (!done) {
                sleep(kPeriod);
                ++timer_wakeups;
              }
            });
            open_nursery([&](Nursery& spinners) {
              for (int i = 0; i < kTasks; ++i) {
                spinners.start_soon([&log, &clock, i] {
                  for (int round = 0; round < kRounds; ++round) {
                    log.push_back(i);
                    clock.jump(kPeriod);
                    checkpoint();
                  }
                });
              }
            });
            done = true;
            clock.jump(kPeriod);  // the timer's last wake: it sees `done`
          });
        },
        {.clock = &clock, .schedule_seed = seed});
    ASSERT_EQ(log.size(), static_cast<std::size_t>(kTasks * kRounds));
    std::vector<int> seen(kTasks, 0);
    std::vector<std::size_t> last_of_round(kRounds, 0), first_of_round(kRounds, log.size());
    for (std::size_t at = 0; at < log.size(); ++at) {
      const int round = seen[static_cast<std::size_t>(log[at])]++;
      last_of_round[static_cast<std::size_t>(round)] =
          std::max(last_of_round[static_cast<std::size_t>(round)], at);
      first_of_round[static_cast<std::size_t>(round)] =
          std::min(first_of_round[static_cast<std::size_t>(round)], at);
    }
    for (int round = 0; round + 1 < kRounds; ++round) {
      EXPECT_LT(last_of_round[static_cast<std::size_t>(round)],
                first_of_round[static_cast<std::size_t>(round + 1)])
          << "seed " << seed << " round " << round;
    }
    // The timer task ran between slices, not once per round only (without slicing it wakes
    // about once per round).
    EXPECT_GT(timer_wakeups, 3 * kRounds) << "seed " << seed;
  }
}

TEST(BatchSlice, ReadyIoIsServedWithinOneSlice) {
  // A pipe becomes readable in the middle of a long batch (a spinner writes to it): the
  // reader runs within a slice, not after the whole batch.
  Counts counts;
  run([&] {
    auto [write_end, read_end] = open_pipe();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&, read = std::move(read_end)]() mutable {
        std::byte byte{};
        ASSERT_EQ(read.receive_some(std::span(&byte, 1)), 1u);
        counts.woke_at = counts.steps;
      });
      lowlevel::wait_all_tasks_blocked();
      for (int i = 0; i < kSpinners; ++i) {
        nursery.start_soon([&, i] {
          for (int round = 0; round < 2; ++round) {
            ++counts.steps;
            if (i == kSpinners / 2 && round == 0) {
              const std::byte byte{1};
              counts.due_at = counts.steps;
              write_end.send_all(std::span(&byte, 1));  // a checkpoint: the step ends here
            }
            checkpoint();
          }
        });
      }
    });
  });
  ASSERT_GE(counts.due_at, 0);
  ASSERT_GE(counts.woke_at, counts.due_at);
  EXPECT_LE(counts.woke_at - counts.due_at, static_cast<std::int64_t>(kSlice));
  EXPECT_LT(counts.woke_at - counts.due_at, kSpinners / 4);  // without slicing: ~kSpinners / 2
}

TEST(BatchSlice, SameSeedSameSchedule) {
  // Slices are counted in steps: the schedule of a long batch with timers stays a function
  // of the seed.
  const Counts a = run_spinners_with_a_sleeper(7, 2);
  const Counts b = run_spinners_with_a_sleeper(7, 2);
  EXPECT_EQ(a.woke_at, b.woke_at);
  EXPECT_EQ(a.due_at, b.due_at);
}

}  // namespace
}  // namespace trellis
