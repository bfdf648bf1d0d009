// Lock-order checking (sync/lock_order.h, RunOptions::check_lock_order): an inversion fails
// the acquisition that completes it, with both locks, both orders, both tasks and both sites;
// consistent orders never fail; lock labels are deterministic; deadlock reports name each
// lock's holder. Property: over random acquisition orders, an inversion is reported exactly
// when the order graph of what was seen gets a cycle.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

// A run under a MockClock with autojump, lock order checked unless told otherwise.
void run_checked(const std::function<void()>& main, bool check = true) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  RunOptions options{.clock = &clock, .schedule_seed = 1};
  options.check_lock_order = check;
  run([&] { main(); }, std::move(options));
}

// Takes `first` then `second`, releasing both.
template <class L1, class L2>
void take_both(L1& first, L2& second) {
  std::lock_guard a(first);
  std::lock_guard b(second);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LockOrder, InversionThrowsAtTheAcquisitionThatCompletesIt) {
  std::optional<LockOrderError> error;
  const int line_first = __LINE__ + 7;
  const int line_second = __LINE__ + 16;
  run_checked([&] {
    Lock accounts("accounts");
    Lock journal("journal");
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "writer"}, [&] {
        accounts.acquire();
        journal.acquire();
        journal.release();
        accounts.release();
      });
    });
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "auditor"}, [&] {
        journal.acquire();
        try {
          accounts.acquire();
        } catch (const LockOrderError& e) {
          error = e;
        }
        EXPECT_FALSE(accounts.locked());  // refused before taking it
        journal.release();
      });
    });
  });
  ASSERT_TRUE(error.has_value());
  const std::string what = error->what();
  EXPECT_TRUE(contains(what, "lock order inversion")) << what;
  EXPECT_TRUE(contains(what, "task 'auditor'")) << what;
  EXPECT_TRUE(contains(error->first(), "Lock 'accounts' then Lock 'journal'")) << what;
  EXPECT_TRUE(contains(error->first(), "task 'writer'")) << what;
  EXPECT_TRUE(contains(error->first(), "lock_order_test.cc:" + std::to_string(line_first))) << what;
  EXPECT_TRUE(contains(error->second(), "Lock 'journal' then Lock 'accounts'")) << what;
  EXPECT_TRUE(contains(error->second(), "task 'auditor'")) << what;
  EXPECT_TRUE(contains(error->second(), "lock_order_test.cc:" + std::to_string(line_second)))
      << what;
}

TEST(LockOrder, OffByDefault) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run(
      [] {
        Lock a;
        Lock b;
        take_both(a, b);
        take_both(b, a);  // an inversion, unchecked
      },
      RunOptions{.clock = &clock});
}

TEST(LockOrder, UnnamedLocksAreNumberedInOrderOfFirstUse) {
  std::string what;
  run_checked([&] {
    StrictFIFOLock unused_until_last;
    Lock a;
    StrictFIFOLock b;
    take_both(a, b);
    try {
      take_both(b, a);
    } catch (const LockOrderError& e) {
      what = e.what();
    }
    unused_until_last.acquire();
    unused_until_last.release();
  });
  EXPECT_TRUE(contains(what, "asks for Lock#1 while holding StrictFIFOLock#2")) << what;
  // Through std::lock_guard the site is the guard's line: the report names the guard.
  EXPECT_TRUE(contains(what, "lock_guard")) << what;
}

TEST(LockOrder, ConsistentOrdersNeverFail) {
  run_checked([] {
    Lock a("a"), b("b"), c("c");
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 4; ++i) {
        n.start_soon([&] {
          for (int round = 0; round < 3; ++round) {
            std::scoped_lock all(a, b, c);  // std::lock: tries and back-offs, never waits held
            trellis::sleep(1ms);
          }
          take_both(a, c);
          take_both(b, c);
          take_both(a, b);
        });
      }
    });
  });
}

TEST(LockOrder, LongerCyclesAreFoundThroughThePath) {
  std::optional<LockOrderError> error;
  run_checked([&] {
    Lock a("a"), b("b"), c("c");
    take_both(a, b);
    take_both(b, c);
    try {
      take_both(c, a);
    } catch (const LockOrderError& e) {
      error = e;
    }
  });
  ASSERT_TRUE(error.has_value());
  EXPECT_TRUE(contains(error->first(), "Lock 'a' then Lock 'b'")) << error->what();
  EXPECT_TRUE(contains(error->first(), "; Lock 'b' then Lock 'c'")) << error->what();
  EXPECT_TRUE(contains(error->second(), "Lock 'c' then Lock 'a'")) << error->what();
}

TEST(LockOrder, TheDeadlockingScheduleGetsTheErrorInsteadOfADeadlock) {
  // Both tasks take their first lock, then ask for the other's: without the check this run
  // deadlocks (DeadlockError); with it the second asker fails and the first proceeds.
  EXPECT_THROW(run_checked(
                   [] {
                     Lock a("a"), b("b");
                     open_nursery([&](Nursery& n) {
                       n.start_soon([&] {
                         std::lock_guard held(a);
                         trellis::sleep(1s);
                         std::lock_guard other(b);
                       });
                       n.start_soon([&] {
                         std::lock_guard held(b);
                         trellis::sleep(1s);
                         std::lock_guard other(a);
                       });
                     });
                   },
                   /*check=*/false),
               DeadlockError);
  int errors = 0;
  run_checked([&] {
    Lock a("a"), b("b");
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 2; ++i) {
        n.start_soon([&, i] {
          Lock& first = i == 0 ? a : b;
          Lock& second = i == 0 ? b : a;
          std::lock_guard held(first);
          trellis::sleep(1s);
          try {
            std::lock_guard other(second);
          } catch (const LockOrderError&) {
            ++errors;
          }
        });
      }
    });
  });
  EXPECT_EQ(errors, 1);
}

TEST(LockOrder, TrylockIsNotCheckedButOrdersWhatFollows) {
  std::string what;
  run_checked([&] {
    Lock a("a"), b("b"), c("c");
    take_both(a, b);
    {
      std::lock_guard held(b);
      ASSERT_TRUE(a.try_lock());  // b then a, but a trylock never waits: no error
      a.release();
    }
    {
      std::unique_lock held(b, std::try_to_lock);
      ASSERT_TRUE(held.owns_lock());
      c.acquire();  // b then c: recorded
      c.release();
    }
    try {
      take_both(c, b);
    } catch (const LockOrderError& e) {
      what = e.what();
    }
  });
  EXPECT_TRUE(contains(what, "asks for Lock 'b' while holding Lock 'c'")) << what;
}

TEST(LockOrder, ConditionWaitRetakesItsLockInOrder) {
  std::string what;
  run_checked([&] {
    Lock outer("outer");
    Lock inner("inner");
    Condition ready(&outer);
    take_both(outer, inner);  // outer then inner
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "waiter"}, [&] {
        std::lock_guard o(outer);
        std::lock_guard i(inner);
        try {
          ready.wait();  // retakes outer while holding inner: inner then outer
        } catch (const LockOrderError& e) {
          what = e.what();
        }
        EXPECT_EQ(outer.statistics().owner, &lowlevel::current_task());
      });
      fakes::wait_all_tasks_blocked();
      std::lock_guard o(outer);
      ready.notify();
    });
  });
  EXPECT_TRUE(contains(what, "asks for Lock 'outer' while holding Lock 'inner'")) << what;
}

TEST(LockOrder, DeadlockReportNamesTheHolder) {
  std::string what;
  try {
    run_checked([] {
      Lock lock("store");
      Event never;
      open_nursery([&](Nursery& n) {
        n.start_soon(SpawnOptions{.name = "holder"}, [&] {
          std::lock_guard held(lock);
          never.wait();
        });
        n.start_soon(SpawnOptions{.name = "blocked"}, [&] {
          trellis::sleep(1s);
          std::lock_guard held(lock);
        });
      });
    });
  } catch (const DeadlockError& e) {
    what = e.what();
  }
  EXPECT_TRUE(contains(what, "for Lock 'store', held by task 'holder'")) << what;
  EXPECT_TRUE(contains(what, "holds Lock 'store'")) << what;
}

TEST(LockOrder, LockDeadlockReportFindsCyclesWithoutDeadlines) {
  std::string report;
  std::string report_with_deadline;
  run_checked([&] {
    lowlevel::set_lock_order_errors(false);
    Lock a("a"), b("b"), c("c");
    open_nursery([&](Nursery& n) {
      n.start_soon(SpawnOptions{.name = "t1"}, [&] {
        std::lock_guard held(a);
        trellis::sleep(1s);
        std::lock_guard other(b);
      });
      n.start_soon(SpawnOptions{.name = "t2"}, [&] {
        std::lock_guard held(b);
        trellis::sleep(1s);
        std::lock_guard other(a);
      });
      n.start_soon(SpawnOptions{.name = "t3"}, [&] {
        trellis::sleep(2s);
        std::lock_guard held(a);  // stuck behind the cycle
      });
      n.start_soon(SpawnOptions{.name = "t4"}, [&] {
        std::lock_guard held(c);
        trellis::sleep(1h);
      });
      n.start_soon(SpawnOptions{.name = "t5"}, [&] {
        trellis::sleep(2s);
        std::lock_guard held(c);  // waits on a sleeper: it will be woken
      });
      trellis::sleep(10s);
      report = lowlevel::lock_deadlock_report();
      n.cancel_scope().cancel();
    });
    // The same cycle, but one waiter has a deadline: its wait can end, so nothing is sure.
    Lock d("d"), e("e");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::lock_guard held(d);
        trellis::sleep(1s);
        move_on_after(1h, [&] { std::lock_guard other(e); });
      });
      n.start_soon([&] {
        std::lock_guard held(e);
        trellis::sleep(1s);
        std::lock_guard other(d);
      });
      trellis::sleep(10s);
      report_with_deadline = lowlevel::lock_deadlock_report();
      n.cancel_scope().cancel();
    });
  });
  EXPECT_TRUE(contains(report, "task 't1' (#")) << report;
  EXPECT_TRUE(contains(report, "waits for Lock 'b', held by task 't2'")) << report;
  EXPECT_TRUE(contains(report, "waits for Lock 'a', held by task 't1'")) << report;
  EXPECT_TRUE(contains(report, "task 't3'")) << report;
  EXPECT_TRUE(contains(report, "(behind the cycle)")) << report;
  EXPECT_FALSE(contains(report, "t5")) << report;
  EXPECT_EQ(report_with_deadline, "");
}

// ---- property ------------------------------------------------------------------------------

constexpr int kLocks = 4;

// Whether the order graph `edges` (a -> b: a taken before b) has a cycle: Kahn's algorithm,
// independent of the tracker's path search.
bool has_cycle(const std::set<std::pair<int, int>>& edges) {
  std::vector<int> indegree(kLocks, 0);
  for (const auto& [from, to] : edges) ++indegree[static_cast<std::size_t>(to)];
  std::vector<int> ready;
  for (int l = 0; l < kLocks; ++l) {
    if (indegree[static_cast<std::size_t>(l)] == 0) ready.push_back(l);
  }
  int removed = 0;
  while (!ready.empty()) {
    const int l = ready.back();
    ready.pop_back();
    ++removed;
    for (const auto& [from, to] : edges) {
      if (from == l && --indegree[static_cast<std::size_t>(to)] == 0) ready.push_back(to);
    }
  }
  return removed < kLocks;
}

RC_GTEST_PROP(LockOrderProperty, InversionReportedIffTheOrderGraphHasACycle, ()) {
  // Tasks run one after another; each takes a sequence of distinct locks, nested.
  const auto sequences = *rc::gen::container<std::vector<std::vector<int>>>(
      rc::gen::map(rc::gen::container<std::vector<int>>(rc::gen::inRange(0, kLocks)),
                   [](std::vector<int> locks) {
                     std::vector<int> distinct;
                     for (int l : locks) {
                       if (std::find(distinct.begin(), distinct.end(), l) == distinct.end()) {
                         distinct.push_back(l);
                       }
                     }
                     return distinct;
                   }));
  // The model: the first acquisition after which the graph of orders seen has a cycle.
  std::optional<std::pair<std::size_t, std::size_t>> expected;
  std::set<std::pair<int, int>> edges;
  for (std::size_t t = 0; t < sequences.size() && !expected; ++t) {
    for (std::size_t i = 0; i < sequences[t].size() && !expected; ++i) {
      for (std::size_t h = 0; h < i; ++h) edges.emplace(sequences[t][h], sequences[t][i]);
      if (has_cycle(edges)) expected.emplace(t, i);
    }
  }
  std::optional<std::pair<std::size_t, std::size_t>> reported;
  run_checked([&] {
    std::vector<std::unique_ptr<Lock>> locks;
    for (int l = 0; l < kLocks; ++l) locks.push_back(std::make_unique<Lock>());
    for (std::size_t t = 0; t < sequences.size() && !reported; ++t) {
      open_nursery([&](Nursery& n) {
        n.start_soon([&, t] {
          std::vector<std::unique_lock<Lock>> held;
          for (std::size_t i = 0; i < sequences[t].size(); ++i) {
            try {
              held.emplace_back(*locks[static_cast<std::size_t>(sequences[t][i])]);
            } catch (const LockOrderError&) {
              reported.emplace(t, i);
              return;
            }
          }
        });
      });
    }
  });
  RC_ASSERT(reported == expected);
}

}  // namespace
}  // namespace trellis
