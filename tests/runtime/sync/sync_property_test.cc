// Property tests of the sync primitives under random schedules, sleeps and cancellations.
//
// Goal: check, on programs nobody wrote by hand, the two promises every user relies on:
// a Lock / StrictFIFOLock / Semaphore / CapacityLimiter never admits more holders than it
// allows (and ends fully released, with nobody left queued), and a Condition never loses a
// notify (every notified waiter wakes, holding the lock, even when its wait is cancelled).
// Method: RapidCheck generates workers (how many, their sleeps, how long they hold, whether
// and when they are cancelled). Each run uses a MockClock with autojump (times are exact and
// a long test costs no real time) and a TrioPolicy with a generated seed (the batch order
// varies, and every failure replays from the printed counterexample).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr int kWorkersMax = 10;
constexpr int kStepsMax = 5;

enum class Kind { kLock, kStrictFIFOLock, kSemaphore, kCapacityLimiter };

struct Step {
  int sleep_before_ms = 0;
  int hold_ms = 0;
  bool try_nowait_first = false;  // acquire_nowait(), falling back to acquire() on WouldBlock
};

struct Worker {
  std::vector<Step> steps;
  int cancel_after_ms = -1;  // -1: no deadline
};

struct Kill {
  int at_ms = 0;
  int worker = 0;
};

// One primitive behind a uniform face.
class Limited {
 public:
  Limited(Kind kind, std::size_t capacity) : kind_(kind), capacity_(capacity) {
    switch (kind) {
      case Kind::kLock:
        lock_.emplace();
        break;
      case Kind::kStrictFIFOLock:
        fifo_lock_.emplace();
        break;
      case Kind::kSemaphore:
        semaphore_.emplace(capacity, capacity);
        break;
      case Kind::kCapacityLimiter:
        limiter_.emplace(capacity);
        break;
    }
  }
  std::size_t capacity() const { return capacity_; }
  void acquire() {
    visit([](auto& p) { p.acquire(); });
  }
  bool try_acquire() {
    bool got = false;
    visit([&](auto& p) {
      try {
        p.acquire_nowait();
        got = true;
      } catch (const WouldBlock&) {
      }
    });
    return got;
  }
  void release() {
    visit([](auto& p) { p.release(); });
  }
  // Fully released and nobody queued.
  bool idle() const {
    switch (kind_) {
      case Kind::kLock:
        return !lock_->locked() && lock_->statistics().tasks_waiting == 0;
      case Kind::kStrictFIFOLock:
        return !fifo_lock_->locked() && fifo_lock_->statistics().tasks_waiting == 0;
      case Kind::kSemaphore:
        return semaphore_->value() == capacity_ && semaphore_->statistics().tasks_waiting == 0;
      case Kind::kCapacityLimiter:
        return limiter_->borrowed_tokens() == 0 && limiter_->statistics().tasks_waiting == 0;
    }
    return false;
  }

 private:
  template <class F>
  void visit(F&& f) {
    switch (kind_) {
      case Kind::kLock:
        f(*lock_);
        break;
      case Kind::kStrictFIFOLock:
        f(*fifo_lock_);
        break;
      case Kind::kSemaphore:
        f(*semaphore_);
        break;
      case Kind::kCapacityLimiter:
        f(*limiter_);
        break;
    }
  }

  Kind kind_;
  std::size_t capacity_;
  std::optional<Lock> lock_;
  std::optional<StrictFIFOLock> fifo_lock_;
  std::optional<Semaphore> semaphore_;
  std::optional<CapacityLimiter> limiter_;
};

struct Observed {
  std::size_t holders = 0;
  std::size_t holders_max = 0;
  int violations = 0;
  std::vector<int> steps_done;
  std::map<int, CancelScope*> scopes;  // live workers' scopes, for the killer
};

void run_worker(int index, const Worker& worker, Limited& limited, Observed& observed) {
  CancelScope scope;
  if (worker.cancel_after_ms >= 0) {
    scope.set_deadline(current_time() + std::chrono::milliseconds(worker.cancel_after_ms));
  }
  observed.scopes[index] = &scope;
  scope.run([&] {
    for (const Step& step : worker.steps) {
      sleep(std::chrono::milliseconds(step.sleep_before_ms));
      if (!step.try_nowait_first || !limited.try_acquire()) limited.acquire();
      struct Release {
        Limited& limited;
        Observed& observed;
        ~Release() {
          --observed.holders;
          limited.release();
        }
      } release{limited, observed};
      ++observed.holders;
      observed.holders_max = std::max(observed.holders_max, observed.holders);
      if (observed.holders > limited.capacity()) ++observed.violations;
      checkpoint();  // let others try to barge in at the same instant
      sleep(std::chrono::milliseconds(step.hold_ms));
      if (observed.holders > limited.capacity()) ++observed.violations;
      ++observed.steps_done[static_cast<std::size_t>(index)];
    }
  });
  observed.scopes.erase(index);
}

RC_GTEST_PROP(SyncProperty, LimitIsNeverExceededAndEverythingIsReleased, ()) {
  const Kind kind = *rc::gen::element(Kind::kLock, Kind::kStrictFIFOLock, Kind::kSemaphore,
                                      Kind::kCapacityLimiter);
  const std::size_t capacity = (kind == Kind::kLock || kind == Kind::kStrictFIFOLock)
                                   ? 1
                                   : static_cast<std::size_t>(*rc::gen::inRange(1, 4));
  const int worker_count = *rc::gen::inRange(1, kWorkersMax + 1);
  std::vector<Worker> workers(static_cast<std::size_t>(worker_count));
  for (Worker& worker : workers) {
    const int steps = *rc::gen::inRange(1, kStepsMax + 1);
    for (int i = 0; i < steps; ++i) {
      worker.steps.push_back({.sleep_before_ms = *rc::gen::inRange(0, 4),
                              .hold_ms = *rc::gen::inRange(0, 4),
                              .try_nowait_first = *rc::gen::arbitrary<bool>()});
    }
    worker.cancel_after_ms = *rc::gen::weightedElement<int>({{3, -1}, {1, 0}, {2, 3}, {2, 9}});
  }
  std::vector<Kill> kills;
  const int kill_count = *rc::gen::inRange(0, 4);
  for (int i = 0; i < kill_count; ++i) {
    kills.push_back(
        {.at_ms = *rc::gen::inRange(0, 20), .worker = *rc::gen::inRange(0, worker_count)});
  }
  std::sort(kills.begin(), kills.end(),
            [](const Kill& a, const Kill& b) { return a.at_ms < b.at_ms; });
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();

  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  TrioPolicy policy(seed);
  Limited limited(kind, capacity);
  Observed observed;
  observed.steps_done.assign(workers.size(), 0);
  std::vector<bool> killed(workers.size(), false);
  run(
      [&] {
        open_nursery([&](Nursery& nursery) {
          for (int i = 0; i < worker_count; ++i) {
            nursery.start_soon(
                [&, i] { run_worker(i, workers[static_cast<std::size_t>(i)], limited, observed); });
          }
          nursery.start_soon([&] {
            for (const Kill& kill : kills) {
              sleep_until(Time(std::chrono::milliseconds(kill.at_ms)));
              auto it = observed.scopes.find(kill.worker);
              if (it == observed.scopes.end()) continue;
              killed[static_cast<std::size_t>(kill.worker)] = true;
              it->second->cancel();
            }
          });
        });
      },
      {.clock = &clock, .policy = &policy});

  RC_ASSERT(observed.violations == 0);
  RC_ASSERT(observed.holders_max <= capacity);
  RC_ASSERT(observed.holders == 0u);
  RC_ASSERT(limited.idle());
  // Liveness: a worker nobody cancelled finished every step (no wake-up was lost).
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (workers[i].cancel_after_ms < 0 && !killed[i]) {
      RC_ASSERT(observed.steps_done[i] == static_cast<int>(workers[i].steps.size()));
    }
  }
}

// ---- Condition ------------------------------------------------------------------------------

struct Producer {
  std::vector<int> sleeps_ms;  // one item after each sleep
  std::vector<int> notify_n;   // per item: how many to notify (0: notify_all)
};

struct Consumer {
  int quota = 0;
  // -1: waits are not cancelled; else each wait is move_on_after(this) (>= 1 ms: with 0 the
  // consumer would spin at one instant and starve the clock, a livelock of the test itself)
  int wait_timeout_ms = -1;
  int sleep_between_ms = 0;
};

RC_GTEST_PROP(SyncProperty, ConditionNeverLosesANotify, ()) {
  const int producer_count = *rc::gen::inRange(1, 5);
  const int consumer_count = *rc::gen::inRange(1, 5);
  std::vector<Producer> producers(static_cast<std::size_t>(producer_count));
  std::vector<Consumer> consumers(static_cast<std::size_t>(consumer_count));
  for (Producer& producer : producers) {
    const int items = *rc::gen::inRange(0, 7);
    for (int i = 0; i < items; ++i) {
      producer.sleeps_ms.push_back(*rc::gen::inRange(0, 4));
      producer.notify_n.push_back(*rc::gen::weightedElement<int>({{6, 1}, {1, 2}, {1, 0}}));
      // Each item is meant for one consumer: that fixes every consumer's quota.
      ++consumers[static_cast<std::size_t>(*rc::gen::inRange(0, consumer_count))].quota;
    }
  }
  for (Consumer& consumer : consumers) {
    consumer.wait_timeout_ms = *rc::gen::weightedElement<int>({{2, -1}, {1, 1}, {1, 3}});
    consumer.sleep_between_ms = *rc::gen::inRange(0, 3);
  }
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();

  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  TrioPolicy policy(seed);
  Condition condition;
  int items = 0;
  int produced = 0;
  int consumed = 0;
  int accounting_errors = 0;     // notify() did not move exactly min(n, waiting) waiters
  int lock_not_held_errors = 0;  // wait() returned or threw without the lock
  run(
      [&] {
        open_nursery([&](Nursery& nursery) {
          for (const Producer& producer : producers) {
            nursery.start_soon([&] {
              for (std::size_t i = 0; i < producer.sleeps_ms.size(); ++i) {
                sleep(std::chrono::milliseconds(producer.sleeps_ms[i]));
                std::lock_guard guard(condition);
                ++items;
                ++produced;
                const ConditionStatistics before = condition.statistics();
                const std::size_t n = static_cast<std::size_t>(producer.notify_n[i]);
                if (n == 0) {
                  condition.notify_all();
                } else {
                  condition.notify(n);
                }
                const std::size_t moved =
                    n == 0 ? before.tasks_waiting : std::min(n, before.tasks_waiting);
                const ConditionStatistics after = condition.statistics();
                if (after.tasks_waiting != before.tasks_waiting - moved ||
                    after.lock_statistics.tasks_waiting !=
                        before.lock_statistics.tasks_waiting + moved) {
                  ++accounting_errors;
                }
              }
            });
          }
          for (const Consumer& consumer : consumers) {
            nursery.start_soon([&] {
              const lowlevel::Task* me = &lowlevel::current_task();
              for (int taken = 0; taken < consumer.quota; ++taken) {
                std::lock_guard guard(condition);
                while (items == 0) {
                  if (consumer.wait_timeout_ms < 0) {
                    condition.wait();
                  } else {
                    move_on_after(std::chrono::milliseconds(consumer.wait_timeout_ms),
                                  [&] { condition.wait(); });
                  }
                  if (condition.statistics().lock_statistics.owner != me) ++lock_not_held_errors;
                }
                --items;
                ++consumed;
                sleep(std::chrono::milliseconds(consumer.sleep_between_ms));
              }
            });
          }
        });
      },
      {.clock = &clock, .policy = &policy});

  // A lost notify leaves a consumer waiting forever: run() would have thrown DeadlockError.
  RC_ASSERT(consumed == produced);
  RC_ASSERT(items == 0);
  RC_ASSERT(accounting_errors == 0);
  RC_ASSERT(lock_not_held_errors == 0);
  RC_ASSERT(!condition.locked());
  RC_ASSERT(condition.statistics().tasks_waiting == 0u);
}

}  // namespace
}  // namespace trellis
