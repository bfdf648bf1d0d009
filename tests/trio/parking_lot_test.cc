// Ports of the semantics of Trio's src/trio/_core/_tests/test_parking_lot.py: park / unpark
// (FIFO, counts, no-op unparks), cancellation of a parked task, repark and repark with a
// count. Each TEST names the Trio test it follows.
//
// Not ported: unpark(count=1.5) (a size_t cannot be fractional), repark([]) (a type error is
// a compile error here), and registering or naming an exited task as a breaker (an exited
// task's object is gone in C++: there is nothing left to pass). Added: the tag handed back by
// unpark_each, and that a parked task's queue node costs no allocation and leaves no trace after a
// cancel.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using fakes::wait_all_tasks_blocked;
using lowlevel::ParkingLot;

template <class F>
decltype(auto) run_autojump(F&& main, std::uint64_t seed = 1) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  return run(std::forward<F>(main), RunOptions{.clock = &clock, .schedule_seed = seed});
}

// Trio's tutil.check_sequence_matches: `record` is the concatenation of `groups`, each group
// in any order.
void expect_sequence_matches(const std::vector<std::string>& record,
                             const std::vector<std::set<std::string>>& groups) {
  std::size_t at = 0;
  for (const std::set<std::string>& group : groups) {
    ASSERT_LE(at + group.size(), record.size());
    std::set<std::string> got(record.begin() + static_cast<std::ptrdiff_t>(at),
                              record.begin() + static_cast<std::ptrdiff_t>(at + group.size()));
    EXPECT_EQ(got, group) << "at position " << at;
    at += group.size();
  }
  EXPECT_EQ(at, record.size());
}

void waiter(int i, ParkingLot& lot, std::vector<std::string>& record) {
  record.push_back("sleep " + std::to_string(i));
  lot.park();
  record.push_back("wake " + std::to_string(i));
}

// test_parking_lot_basic
TEST(TrioParkingLot, Basic) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    run_autojump(
        [] {
          ParkingLot lot;
          std::vector<std::string> record;
          open_nursery([&](Nursery& nursery) {
            EXPECT_TRUE(lot.empty());
            EXPECT_EQ(lot.size(), 0u);
            EXPECT_EQ(lot.statistics().tasks_waiting, 0u);
            for (int i = 0; i < 3; ++i) nursery.start_soon([&, i] { waiter(i, lot, record); });
            wait_all_tasks_blocked();
            EXPECT_EQ(record.size(), 3u);
            EXPECT_FALSE(lot.empty());
            EXPECT_EQ(lot.size(), 3u);
            EXPECT_EQ(lot.statistics().tasks_waiting, 3u);
            EXPECT_EQ(lot.unpark_all().size(), 3u);
            EXPECT_EQ(lot.statistics().tasks_waiting, 0u);
            wait_all_tasks_blocked();
            EXPECT_EQ(record.size(), 6u);
          });
          expect_sequence_matches(
              record, {{"sleep 0", "sleep 1", "sleep 2"}, {"wake 0", "wake 1", "wake 2"}});

          record.clear();
          open_nursery([&](Nursery& nursery) {
            for (int i = 0; i < 3; ++i) {
              nursery.start_soon([&, i] { waiter(i, lot, record); });
              wait_all_tasks_blocked();
            }
            EXPECT_EQ(record.size(), 3u);
            for (int i = 0; i < 3; ++i) {
              EXPECT_EQ(lot.unpark().size(), 1u);
              wait_all_tasks_blocked();
            }
          });
          // 1-by-1 wake-ups are strict FIFO.
          EXPECT_EQ(record, (std::vector<std::string>{"sleep 0", "sleep 1", "sleep 2", "wake 0",
                                                      "wake 1", "wake 2"}));

          // It's legal (but a no-op) to unpark while nothing is parked.
          EXPECT_TRUE(lot.unpark().empty());
          EXPECT_TRUE(lot.unpark(1).empty());
          EXPECT_TRUE(lot.unpark(100).empty());
          EXPECT_EQ(lot.unpark_one(), nullptr);

          // unpark with a count.
          record.clear();
          open_nursery([&](Nursery& nursery) {
            for (int i = 0; i < 3; ++i) {
              nursery.start_soon([&, i] { waiter(i, lot, record); });
              wait_all_tasks_blocked();
            }
            EXPECT_EQ(lot.unpark(2).size(), 2u);
            wait_all_tasks_blocked();
            expect_sequence_matches(record,
                                    {{"sleep 0"}, {"sleep 1"}, {"sleep 2"}, {"wake 0", "wake 1"}});
            lot.unpark_all();
          });
        },
        seed);
  }
}

// test_parking_lot_basic (unpark returns the woken tasks, longest waiter first)
TEST(TrioParkingLot, UnparkReturnsTheWokenTasksOldestFirst) {
  run_autojump([] {
    ParkingLot lot;
    std::vector<const lowlevel::Task*> parked;
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 3; ++i) {
        nursery.start_soon([&] {
          parked.push_back(&lowlevel::current_task());
          lot.park();
        });
        wait_all_tasks_blocked();
      }
      std::vector<lowlevel::Task*> woken = lot.unpark(2);
      ASSERT_EQ(woken.size(), 2u);
      EXPECT_EQ(woken[0], parked[0]);
      EXPECT_EQ(woken[1], parked[1]);
      EXPECT_EQ(lot.unpark_one(), parked[2]);
    });
  });
}

struct Outcome {
  std::vector<std::string> record;
  std::map<int, CancelScope*> scopes;
};

void cancellable_waiter(int name, ParkingLot& lot, Outcome& outcome) {
  CancelScope scope;
  outcome.scopes[name] = &scope;
  scope.run([&] {
    outcome.record.push_back("sleep " + std::to_string(name));
    try {
      lot.park();
    } catch (const Cancelled&) {
      outcome.record.push_back("cancelled " + std::to_string(name));
      throw;
    }
    outcome.record.push_back("wake " + std::to_string(name));
  });
  outcome.scopes.erase(name);
}

// test_parking_lot_cancel
TEST(TrioParkingLot, Cancel) {
  run_autojump([] {
    Outcome outcome;
    ParkingLot lot;
    open_nursery([&](Nursery& nursery) {
      for (int name = 1; name <= 3; ++name) {
        nursery.start_soon([&, name] { cancellable_waiter(name, lot, outcome); });
        wait_all_tasks_blocked();
      }
      EXPECT_EQ(outcome.record.size(), 3u);
      outcome.scopes.at(2)->cancel();
      EXPECT_EQ(lot.size(), 2u);  // left the queue at once
      wait_all_tasks_blocked();
      EXPECT_EQ(outcome.record.size(), 4u);
      lot.unpark_all();
      wait_all_tasks_blocked();
      EXPECT_EQ(outcome.record.size(), 6u);
    });
    expect_sequence_matches(
        outcome.record,
        {{"sleep 1"}, {"sleep 2"}, {"sleep 3"}, {"cancelled 2"}, {"wake 1", "wake 3"}});
  });
}

// test_parking_lot_repark
TEST(TrioParkingLot, Repark) {
  run_autojump([] {
    Outcome outcome;
    ParkingLot lot1;
    ParkingLot lot2;
    open_nursery([&](Nursery& nursery) {
      for (int name = 1; name <= 3; ++name) {
        nursery.start_soon([&, name] { cancellable_waiter(name, lot1, outcome); });
        wait_all_tasks_blocked();
      }
      EXPECT_EQ(outcome.record.size(), 3u);
      EXPECT_EQ(lot1.size(), 3u);
      fakes::assert_no_checkpoints([&] { lot1.repark(lot2); });
      EXPECT_EQ(lot1.size(), 2u);
      EXPECT_EQ(lot2.size(), 1u);
      lot2.unpark_all();
      wait_all_tasks_blocked();
      EXPECT_EQ(outcome.record,
                (std::vector<std::string>{"sleep 1", "sleep 2", "sleep 3", "wake 1"}));

      lot1.repark_all(lot2);
      EXPECT_EQ(lot1.size(), 0u);
      EXPECT_EQ(lot2.size(), 2u);

      // Cancelling a reparked task takes it off its new lot.
      outcome.scopes.at(2)->cancel();
      wait_all_tasks_blocked();
      EXPECT_EQ(lot2.size(), 1u);
      EXPECT_EQ(outcome.record, (std::vector<std::string>{"sleep 1", "sleep 2", "sleep 3", "wake 1",
                                                          "cancelled 2"}));
      lot2.unpark_all();
      wait_all_tasks_blocked();
      EXPECT_EQ(outcome.record, (std::vector<std::string>{"sleep 1", "sleep 2", "sleep 3", "wake 1",
                                                          "cancelled 2", "wake 3"}));
    });
  });
}

// test_parking_lot_repark_with_count
TEST(TrioParkingLot, ReparkWithCount) {
  run_autojump([] {
    Outcome outcome;
    ParkingLot lot1;
    ParkingLot lot2;
    open_nursery([&](Nursery& nursery) {
      for (int name = 1; name <= 3; ++name) {
        nursery.start_soon([&, name] { cancellable_waiter(name, lot1, outcome); });
        wait_all_tasks_blocked();
      }
      EXPECT_EQ(outcome.record.size(), 3u);
      EXPECT_EQ(lot1.size(), 3u);
      EXPECT_EQ(lot2.size(), 0u);
      lot1.repark(lot2, 2);
      EXPECT_EQ(lot1.size(), 1u);
      EXPECT_EQ(lot2.size(), 2u);
      while (!lot2.empty()) {
        lot2.unpark();
        wait_all_tasks_blocked();
      }
      EXPECT_EQ(outcome.record,
                (std::vector<std::string>{"sleep 1", "sleep 2", "sleep 3", "wake 1", "wake 2"}));
      lot1.unpark_all();
    });
  });
}

// Added: a reparked task queues behind the new lot's own waiters, and the lot's statistics
// and park() name show in what the task waits on.
TEST(TrioParkingLot, ReparkAppendsBehindExistingWaitersAndTagsComeBack) {
  run_autojump([] {
    ParkingLot lot1;
    ParkingLot lot2;
    std::vector<int> woke;
    int tags[3] = {};
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        lot2.park("first on lot2", &tags[0]);
        woke.push_back(0);
      });
      wait_all_tasks_blocked();
      nursery.start_soon([&] {
        lot1.park("on lot1", &tags[1]);
        woke.push_back(1);
      });
      wait_all_tasks_blocked();
      std::vector<const void*> seen;
      lot1.repark_all(lot2);
      EXPECT_EQ(lot2.statistics().tasks_waiting, 2u);
      const std::size_t n = lot2.unpark_each(10, [&](lowlevel::Task& task, const void* tag) {
        EXPECT_TRUE(task.parked());
        seen.push_back(tag);
      });
      EXPECT_EQ(n, 2u);
      EXPECT_EQ(seen, (std::vector<const void*>{&tags[0], &tags[1]}));
    });
    EXPECT_EQ(woke.size(), 2u);
  });
}

// Added: parking inside an already-cancelled scope throws Cancelled at once and leaves the lot
// empty; a lot destroyed with nothing parked is fine.
TEST(TrioParkingLot, ParkInACancelledScopeLeavesNoTrace) {
  run_autojump([] {
    ParkingLot lot;
    CancelScope scope;
    scope.run([&] {
      scope.cancel();
      lot.park();
    });
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_TRUE(lot.empty());
  });
}

// test_parking_lot_breaker_basic
TEST(TrioParkingLot, BreakerBasic) {
  run_autojump([] {
    ParkingLot lot;
    EXPECT_FALSE(lot.broken());
    lot.break_lot();  // defaults to the current task
    EXPECT_TRUE(lot.broken());
    const std::string me = lowlevel::current_task().name();
    EXPECT_EQ(lot.broken_by(), me);
    lot.break_lot();  // again: recorded again
    EXPECT_EQ(lot.broken_by(), me + ", " + me);
    try {
      lot.park();
      ADD_FAILURE() << "parked in a broken lot";
    } catch (const BrokenResourceError& e) {
      EXPECT_EQ(std::string(e.what()),
                "attempted to park in a parking lot broken by " + me + ", " + me);
    }
    EXPECT_TRUE(lot.unpark().empty());
  });
}

// test_parking_lot_break_parking_tasks
TEST(TrioParkingLot, BreakerExitingWakesParkedTasksWithBrokenResourceError) {
  run_autojump([] {
    ParkingLot lot;
    CancelScope scope;
    try {
      open_nursery([&](Nursery& n) {
        n.start_soon(SpawnOptions{.name = "bad parker"}, [&] {
          lowlevel::add_parking_lot_breaker(lowlevel::current_task(), lot);
          scope.run([] { sleep_forever(); });
        });
        wait_all_tasks_blocked();
        n.start_soon([&] { lot.park(); });
        wait_all_tasks_blocked();
        EXPECT_EQ(lot.size(), 1u);
        scope.cancel();
      });
      ADD_FAILURE() << "the parked task was not woken";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      try {
        std::rethrow_exception(group.exceptions().front());
      } catch (const BrokenResourceError& e) {
        EXPECT_EQ(std::string(e.what()), "parking lot broken by bad parker");
      }
    }
    EXPECT_EQ(lot.broken_by(), "bad parker");
  });
}

// test_parking_lot_breaker_registration, test_parking_lot_breaker_rebreak,
// test_parking_lot_multiple_breakers_exit
TEST(TrioParkingLot, BreakerRegistration) {
  run_autojump([] {
    ParkingLot lot;
    lowlevel::Task& me = lowlevel::current_task();
    EXPECT_THROW(lowlevel::remove_parking_lot_breaker(me, lot), UsageError);
    // The same task may register twice; each registration is removed separately.
    lowlevel::add_parking_lot_breaker(me, lot);
    lowlevel::add_parking_lot_breaker(me, lot);
    lowlevel::remove_parking_lot_breaker(me, lot);
    lowlevel::remove_parking_lot_breaker(me, lot);
    EXPECT_THROW(lowlevel::remove_parking_lot_breaker(me, lot), UsageError);
    // Several breakers exiting: the lot names them all, in the order they broke it.
    open_nursery([&](Nursery& n) {
      for (const char* name : {"one", "two", "three"}) {
        n.start_soon(SpawnOptions{.name = name}, [&, name] {
          lowlevel::add_parking_lot_breaker(lowlevel::current_task(), lot);
          sleep(std::chrono::seconds(name[0] == 'o' ? 1 : name[1] == 'w' ? 2 : 3));
        });
      }
    });
    EXPECT_EQ(lot.broken_by(), "one, two, three");
    // Registering a breaker for an already broken lot is fine; it is named again on exit.
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "late"},
                   [&] { lowlevel::add_parking_lot_breaker(lowlevel::current_task(), lot); });
    });
    EXPECT_EQ(lot.broken_by(), "one, two, three, late");
  });
}

// test_parking_lot_break_itself
TEST(TrioParkingLot, BreakingALotWhoseBreakerIsParkedInIt) {
  run_autojump([] {
    ParkingLot lot;
    try {
      open_nursery([&](Nursery& n) {
        const lowlevel::Task* child =
            n.start<const lowlevel::Task*>([&](TaskStatus<const lowlevel::Task*>& status) {
              status.started(&lowlevel::current_task());
              lot.park();
            });
        lot.break_lot(child);
      });
      ADD_FAILURE() << "the parked task was not woken";
    } catch (const ExceptionGroup& group) {
      EXPECT_TRUE(group.contains<BrokenResourceError>());
    }
  });
}

TEST(TrioParkingLot, ALotDestroyedWhileRegisteredIsForgotten) {
  run_autojump([] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        {
          ParkingLot lot;
          lowlevel::add_parking_lot_breaker(lowlevel::current_task(), lot);
        }  // gone before its breaker exits: nothing may touch it then
        sleep(std::chrono::seconds(1));
      });
    });
    // A lock destroyed while held, and a run that ends with registrations outstanding.
    {
      Lock lock;
      lock.acquire();
    }
  });
  ParkingLot survivor;
  run_autojump([&] { lowlevel::add_parking_lot_breaker(lowlevel::current_task(), survivor); });
  EXPECT_TRUE(survivor.broken());  // main exited: it broke the lot
}

}  // namespace
}  // namespace trellis
