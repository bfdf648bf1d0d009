// Ports of the semantics of Trio's src/trio/_tests/test_testing.py for the helpers that need
// no streams: assert_checkpoints / assert_no_checkpoints and Sequencer (test_assert_checkpoints,
// test_assert_no_checkpoints, test_Sequencer, test_Sequencer_cancel), plus what C++ adds:
// results pass through, a forgotten step is a DeadlockError naming it, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using fakes::assert_checkpoints;
using fakes::assert_no_checkpoints;
using fakes::CheckpointAssertionError;
using fakes::Sequencer;

template <class F>
decltype(auto) run_autojump(F&& main, std::uint64_t seed = 1) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  return run(std::forward<F>(main), RunOptions{.clock = &clock, .schedule_seed = seed});
}

// test_assert_checkpoints
TEST(TrioTesting, AssertCheckpoints) {
  run_autojump([] {
    assert_checkpoints([] { checkpoint(); });
    EXPECT_THROW(assert_checkpoints([] {}), CheckpointAssertionError);
    // Half a checkpoint (a cancel point without a schedule point, or the reverse) is not one.
    EXPECT_THROW(assert_checkpoints([] { checkpoint_if_cancelled(); }), CheckpointAssertionError);
    EXPECT_THROW(assert_checkpoints([] { lowlevel::cancel_shielded_checkpoint(); }),
                 CheckpointAssertionError);
    // Both halves together are.
    assert_checkpoints([] {
      checkpoint_if_cancelled();
      lowlevel::cancel_shielded_checkpoint();
    });
    assert_checkpoints([] { sleep(0s); });
    // A body that throws is not checked: its exception comes through.
    EXPECT_THROW(assert_checkpoints([] { throw std::runtime_error("boom"); }), std::runtime_error);
    // The body's result comes back, references included.
    EXPECT_EQ(assert_checkpoints([] {
                checkpoint();
                return 42;
              }),
              42);
    int value = 1;
    int& ref = assert_checkpoints([&]() -> int& {
      checkpoint();
      return value;
    });
    EXPECT_EQ(&ref, &value);
  });
}

// test_assert_no_checkpoints
TEST(TrioTesting, AssertNoCheckpoints) {
  run_autojump([] {
    assert_no_checkpoints([] {});
    EXPECT_THROW(assert_no_checkpoints([] { checkpoint(); }), CheckpointAssertionError);
    // Either half of a checkpoint already fails it.
    EXPECT_THROW(assert_no_checkpoints([] { checkpoint_if_cancelled(); }),
                 CheckpointAssertionError);
    EXPECT_THROW(assert_no_checkpoints([] { lowlevel::cancel_shielded_checkpoint(); }),
                 CheckpointAssertionError);
    EXPECT_THROW(assert_no_checkpoints([] {
                   checkpoint_if_cancelled();
                   lowlevel::cancel_shielded_checkpoint();
                 }),
                 CheckpointAssertionError);
    // An exception after a checkpoint is still a failure of the assertion...
    EXPECT_THROW(assert_no_checkpoints([] {
                   checkpoint();
                   throw std::runtime_error("boom");
                 }),
                 CheckpointAssertionError);
    // ...but without one the body's exception comes through.
    EXPECT_THROW(assert_no_checkpoints([] { throw std::runtime_error("boom"); }),
                 std::runtime_error);
    EXPECT_EQ(assert_no_checkpoints([] { return std::string("x"); }), "x");
  });
}

TEST(TrioTesting, CheckpointAssertionsNeedATask) {
  EXPECT_THROW(assert_checkpoints([] {}), UsageError);
  EXPECT_THROW(assert_no_checkpoints([] {}), UsageError);
}

// test_Sequencer: steps run in order whatever the schedule (several seeds).
TEST(TrioTesting, SequencerOrdersSteps) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::vector<std::pair<std::string, int>> record;
    run_autojump(
        [&] {
          Sequencer seq;
          open_nursery([&](Nursery& n) {
            n.start_soon([&] {
              {
                auto s = seq(1);
                record.emplace_back("f1", 1);
              }
              {
                auto s = seq(3);
                record.emplace_back("f1", 3);
              }
              {
                auto s = seq(4);
                record.emplace_back("f1", 4);
              }
            });
            n.start_soon([&] {
              {
                auto s = seq(0);
                record.emplace_back("f2", 0);
              }
              {
                auto s = seq(2);
                record.emplace_back("f2", 2);
              }
            });
            {
              auto s = seq(5);
              fakes::wait_all_tasks_blocked();
            }
            EXPECT_EQ(record, (std::vector<std::pair<std::string, int>>{
                                  {"f2", 0}, {"f1", 1}, {"f2", 2}, {"f1", 3}, {"f1", 4}}));
          });
          Sequencer again;
          { auto s = again(0); }
          EXPECT_THROW({ auto s = again(0); }, UsageError);
        },
        seed);
  }
}

// Steps wait through real time passing too (a sleeping step holds up the next).
TEST(TrioTesting, SequencerWaitsForSlowSteps) {
  std::vector<Time> finished;
  run_autojump([&] {
    Sequencer seq;
    open_nursery([&](Nursery& n) {
      for (int i = 2; i >= 0; --i) {
        n.start_soon([&, i] {
          auto s = seq(static_cast<std::uint64_t>(i));
          sleep(10s);
          finished.push_back(current_time());
        });
      }
    });
  });
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_EQ(finished[0].time_since_epoch(), 10s);
  EXPECT_EQ(finished[1].time_since_epoch(), 20s);
  EXPECT_EQ(finished[2].time_since_epoch(), 30s);
}

// test_Sequencer_cancel: a cancelled wait breaks the sequence for every waiter and for late
// arrivals.
TEST(TrioTesting, SequencerCancelBreaksTheSequence) {
  std::vector<std::string> record;
  run_autojump([&] {
    Sequencer seq;
    open_nursery([&](Nursery& n) {
      for (int i : {1, 2}) {
        n.start_soon([&, i] {
          CancelScope scope;
          if (i == 1) scope.cancel();
          scope.run([&] {
            try {
              auto s = seq(static_cast<std::uint64_t>(i));
              ADD_FAILURE() << "seq(" << i << ") should have thrown";
            } catch (const UsageError&) {
              record.push_back("seq(" + std::to_string(i) + ") error");
            }
          });
        });
      }
      auto s = seq(0);
    });
    EXPECT_THROW({ auto s = seq(3); }, UsageError);
  });
  std::sort(record.begin(), record.end());
  EXPECT_EQ(record, (std::vector<std::string>{"seq(1) error", "seq(2) error"}));
}

// A cancelled wait wakes tasks already parked for later steps.
TEST(TrioTesting, SequencerCancelWakesParkedWaiters) {
  std::vector<std::string> record;
  run_autojump([&] {
    Sequencer seq;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          auto s = seq(2);
        } catch (const UsageError& e) {
          record.push_back(std::string("2: ") + e.what());
        }
      });
      n.start_soon([&] {
        move_on_after(5s, [&] {
          try {
            auto s = seq(1);
          } catch (const UsageError& e) {
            record.push_back(std::string("1: ") + e.what());
          }
        });
      });
    });
  });
  ASSERT_EQ(record.size(), 2u);
  EXPECT_EQ(record[0], "1: Sequencer wait cancelled -- sequence broken");
  EXPECT_EQ(record[1], "2: sequence broken!");
}

// A step that never comes: the waiters are reported by the deadlock detector, by name.
TEST(TrioTesting, SequencerMissingStepIsADeadlockNotAHang) {
  try {
    run([] {
      Sequencer seq;
      auto s = seq(2);
    });
    FAIL() << "expected DeadlockError";
  } catch (const DeadlockError& e) {
    EXPECT_NE(std::string(e.what()).find("Sequencer step 2 (waits for step 1 to finish)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace trellis
