// Exhaustive exploration with partial-order reduction (explore.h, Reduction::kDpor): exact
// trace counts on programs whose Mazurkiewicz traces are counted independently, the same
// final states as without reduction (a RapidCheck property over random small programs),
// planted races found in fewer schedules and fixed versions proved, the primitives'
// instrumentation, and the contract (undeclared shared memory is invisible to it).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "child_process.h"
#include "trellis/sim.h"
#include "trellis/sim/shared.h"

namespace {

using namespace std::chrono_literals;
using trellis::sim::ExhaustiveOptions;
using trellis::sim::ExhaustiveResult;
using trellis::sim::explore_exhaustively;
using trellis::sim::Reduction;
using trellis::sim::Shared;
using trellis::sim::SharedObject;

constexpr ExhaustiveOptions kDpor{.schedules_max = 100'000, .reduction = Reduction::kDpor};

ExhaustiveOptions unreduced(int preemption_bound) {
  return {.preemption_bound = preemption_bound, .schedules_max = 100'000};
}

// `tasks` tasks of `steps` steps each, every step writing an object of its own task only:
// one Mazurkiewicz trace.
void independent_tasks(int tasks, int steps) {
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < tasks; ++t) {
      n.start_soon([steps] {
        SharedObject mine;
        for (int i = 0; i < steps; ++i) {
          if (i > 0) trellis::checkpoint();
          mine.write();
        }
      });
    }
  });
}

TEST(Dpor, IndependentStepsAreOneTrace) {
  const ExhaustiveResult plain =
      explore_exhaustively([] { independent_tasks(3, 3); }, unreduced(6));
  EXPECT_TRUE(plain.complete);
  EXPECT_EQ(plain.schedules, 1680u);  // 9! / (3! 3! 3!)
  const ExhaustiveResult reduced = explore_exhaustively([] { independent_tasks(3, 3); }, kDpor);
  EXPECT_TRUE(reduced.complete);
  EXPECT_FALSE(reduced.failure.has_value());
  EXPECT_EQ(reduced.schedules, 1u);
  EXPECT_EQ(reduced.sleep_blocked, 0u);
  std::printf("3 independent tasks x 3 steps: %zu schedules without reduction, %zu with DPOR\n",
              plain.schedules, reduced.schedules);
  EXPECT_NE(describe(reduced, kDpor).find("complete, every Mazurkiewicz trace"), std::string::npos)
      << describe(reduced, kDpor);
  for (int tasks = 2; tasks <= 4; ++tasks) {
    const ExhaustiveResult r = explore_exhaustively([&] { independent_tasks(tasks, 2); }, kDpor);
    EXPECT_TRUE(r.complete) << tasks;
    EXPECT_EQ(r.schedules, 1u) << tasks;
  }
}

// Two tasks incrementing one declared counter `rounds` times each, a read step then a write
// step per increment. Each step logs itself; the run's trace signature is, for every pair of
// dependent steps of different tasks (not both reads), which came first.
struct Event {
  int task;
  int index;
  bool write;
};

std::set<std::pair<int, int>> signature(const std::vector<Event>& log) {
  std::set<std::pair<int, int>> order;  // (first, second) by task * 100 + index
  for (std::size_t x = 0; x < log.size(); ++x) {
    for (std::size_t y = x + 1; y < log.size(); ++y) {
      if (log[x].task == log[y].task || (!log[x].write && !log[y].write)) continue;
      order.emplace(log[x].task * 100 + log[x].index, log[y].task * 100 + log[y].index);
    }
  }
  return order;
}

int shared_counter(int rounds, std::vector<Event>* log) {
  Shared<int> counter{0};
  log->clear();  // (the log observes; it is not state the tasks share)
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < 2; ++t) {
      n.start_soon([&, t] {
        int index = 0;
        for (int i = 0; i < rounds; ++i) {
          if (i > 0) trellis::checkpoint();
          const int seen = counter.load();
          log->push_back({t, index++, false});
          trellis::checkpoint();
          counter.store(seen + 1);
          log->push_back({t, index++, true});
        }
      });
    }
  });
  return counter.load();
}

struct CounterRun {
  ExhaustiveResult result;
  std::set<std::set<std::pair<int, int>>> traces;
  std::set<int> outcomes;
};

CounterRun explore_counter(int rounds, ExhaustiveOptions options) {
  CounterRun out;
  std::vector<Event> log;
  out.result = explore_exhaustively(
      [&] {
        out.outcomes.insert(shared_counter(rounds, &log));
        out.traces.insert(signature(log));
      },
      options);
  return out;
}

TEST(Dpor, SharedCounterRunsEachTraceOnceAndReachesEveryOutcome) {
  // Traces counted by hand (and by the signatures of every interleaving): one increment
  // each (R W | r w): of the C(4,2) = 6 interleavings, R r W w and r R W w are one trace
  // (the reads commute), and so are R r w W and r R w W: 4 traces, final counter 1 or 2.
  // Two increments each: 70 interleavings, 34 traces, final counter 2, 3 or 4.
  const struct {
    int rounds;
    std::size_t interleavings, traces;
    std::set<int> outcomes;
  } cases[] = {{1, 6, 4, {1, 2}}, {2, 70, 34, {2, 3, 4}}};
  for (const auto& c : cases) {
    const CounterRun plain = explore_counter(c.rounds, unreduced(4 * c.rounds));
    ASSERT_TRUE(plain.result.complete);
    EXPECT_EQ(plain.result.schedules, c.interleavings);
    EXPECT_EQ(plain.traces.size(), c.traces);
    EXPECT_EQ(plain.outcomes, c.outcomes);
    const CounterRun reduced = explore_counter(c.rounds, kDpor);
    ASSERT_TRUE(reduced.result.complete);
    // Every trace, and no complete run repeats one (sleep sets); redundant runs are those a
    // sleep set cut part-way.
    EXPECT_EQ(reduced.traces, plain.traces) << c.rounds;
    EXPECT_EQ(reduced.result.schedules - reduced.result.sleep_blocked, c.traces) << c.rounds;
    EXPECT_EQ(reduced.outcomes, c.outcomes);
    std::printf(
        "counter, %d increment(s) per task: %zu schedules without reduction, %zu with DPOR "
        "(%zu redundant), %zu traces\n",
        c.rounds, plain.result.schedules, reduced.result.schedules, reduced.result.sleep_blocked,
        c.traces);
  }
}

// The planted races of exhaustive_test.cc with their shared state declared.
void deep_race(bool fixed) {
  Shared<int> flag{0};
  bool broken = false;  // written and read by task a only
  trellis::Lock lock;
  trellis::open_nursery([&](trellis::Nursery& n) {
    n.start_soon([&] {
      for (int i = 0; i < 60; ++i) trellis::checkpoint();
      if (fixed) lock.acquire();
      const int seen = flag.load();
      trellis::checkpoint();
      if (seen != flag.load()) broken = true;
      if (fixed) lock.release();
    });
    n.start_soon([&] {
      for (int i = 0; i < 15; ++i) trellis::checkpoint();
      if (fixed) lock.acquire();
      flag.update([](int& v) { ++v; });
      if (fixed) lock.release();
    });
    n.start_soon([&] {
      for (int i = 0; i < 6; ++i) trellis::checkpoint();
    });
  });
  if (broken) throw std::runtime_error("flag changed between check and act");
}

void lost_update(bool fixed, int tasks) {
  Shared<int> counter{0};
  trellis::Lock lock;
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (int t = 0; t < tasks; ++t) {
      n.start_soon([&] {
        if (fixed) lock.acquire();
        const int read = counter.load();
        trellis::checkpoint();
        counter.store(read + 1);
        if (fixed) lock.release();
      });
    }
  });
  if (counter.load() != tasks) throw std::runtime_error("lost update");
}

TEST(Dpor, FindsThePlantedRacesInFewerSchedulesAndProvesTheFixes) {
  struct Case {
    const char* name;
    std::function<void(bool)> body;
    int bound;  // without reduction: the bound the existing tests prove the fix for
  };
  const Case cases[] = {
      {"deep race", [](bool fixed) { deep_race(fixed); }, 1},
      {"lost update, 2 tasks", [](bool fixed) { lost_update(fixed, 2); }, 4},
      {"lost update, 3 tasks", [](bool fixed) { lost_update(fixed, 3); }, 3},
  };
  for (const Case& c : cases) {
    const ExhaustiveResult plain = explore_exhaustively([&] { c.body(false); }, unreduced(c.bound));
    const ExhaustiveResult reduced = explore_exhaustively([&] { c.body(false); }, kDpor);
    ASSERT_TRUE(plain.failure.has_value()) << c.name;
    ASSERT_TRUE(reduced.failure.has_value()) << c.name;
    EXPECT_LE(reduced.schedules, plain.schedules) << c.name;
    // The failure replays from its decisions alone.
    trellis::sim::DecisionPolicy replay(reduced.failure->decisions);
    EXPECT_THROW(trellis::sim::run_unit_with([&] { c.body(false); }, replay), std::runtime_error)
        << c.name;
    // The fixed program: every trace (no bound at all) against every schedule within the bound.
    const ExhaustiveResult plain_fixed =
        explore_exhaustively([&] { c.body(true); }, unreduced(c.bound));
    const ExhaustiveResult reduced_fixed = explore_exhaustively([&] { c.body(true); }, kDpor);
    EXPECT_TRUE(plain_fixed.complete) << c.name;
    EXPECT_TRUE(reduced_fixed.complete) << c.name;
    EXPECT_FALSE(reduced_fixed.failure.has_value()) << c.name;
    EXPECT_LT(reduced_fixed.schedules, plain_fixed.schedules) << c.name;
    std::printf(
        "%s: found at schedule %zu without reduction (bound %d), %zu with DPOR; fixed: %zu "
        "schedules for bound %d, %zu with DPOR for every trace (%zu redundant)\n",
        c.name, plain.schedules, c.bound, reduced.schedules, plain_fixed.schedules, c.bound,
        reduced_fixed.schedules, reduced_fixed.sleep_blocked);
  }
}

// The primitives report their accesses: the outcomes a lock, an event and a channel allow
// are all reached, in fewer schedules than without reduction.
TEST(Dpor, PrimitivesAreInstrumented) {
  // Two producers and a consumer over a channel; the consumer's order is the outcome. An
  // event tells the first producer to go; a semaphore bounds nothing but is touched.
  auto body = [](std::set<std::vector<int>>* outcomes) {
    std::vector<int> received;
    trellis::Event go;
    trellis::Semaphore tokens(2);
    auto [tx, rx] = trellis::open_memory_channel<int>(0);
    trellis::open_nursery([&](trellis::Nursery& n) {
      n.start_soon([&, tx = tx.clone()]() mutable {
        go.wait();
        tokens.acquire();
        tx.send(1);
        tokens.release();
        tx.close();
      });
      n.start_soon([&, tx = tx.clone()]() mutable {
        tokens.acquire();
        tx.send(2);
        tokens.release();
        go.set();
        tx.close();
      });
      tx.close();
      n.start_soon([&, rx = std::move(rx)]() mutable {
        for (int value : rx) received.push_back(value);
      });
    });
    outcomes->insert(received);
  };
  std::set<std::vector<int>> plain_outcomes, reduced_outcomes;
  const ExhaustiveResult plain = explore_exhaustively([&] { body(&plain_outcomes); }, unreduced(8));
  const ExhaustiveResult reduced = explore_exhaustively([&] { body(&reduced_outcomes); }, kDpor);
  ASSERT_TRUE(plain.complete);
  ASSERT_TRUE(reduced.complete);
  EXPECT_EQ(reduced_outcomes, plain_outcomes);
  EXPECT_EQ(reduced_outcomes, (std::set<std::vector<int>>{{2, 1}}));  // the event orders them
  EXPECT_LT(reduced.schedules, plain.schedules);
  std::printf("channel + event + semaphore: %zu schedules without reduction, %zu with DPOR\n",
              plain.schedules, reduced.schedules);

  // A lock: both orders of two critical sections are reached.
  std::set<std::string> plain_orders, reduced_orders;
  auto locked = [](std::set<std::string>* orders) {
    trellis::Lock lock;
    std::string order;  // written under the lock only
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (char name : {'a', 'b'}) {
        n.start_soon([&, name] {
          trellis::checkpoint();
          const std::lock_guard guard(lock);
          order.push_back(name);
          trellis::checkpoint();
        });
      }
    });
    orders->insert(order);
  };
  const ExhaustiveResult plain_lock =
      explore_exhaustively([&] { locked(&plain_orders); }, unreduced(8));
  const ExhaustiveResult reduced_lock =
      explore_exhaustively([&] { locked(&reduced_orders); }, kDpor);
  EXPECT_TRUE(reduced_lock.complete);
  EXPECT_EQ(reduced_orders, plain_orders);
  EXPECT_EQ(reduced_orders.size(), 2u);
  EXPECT_LT(reduced_lock.schedules, plain_lock.schedules);
}

// The contract (explore.h): state shared outside Trellis objects must be declared. A lost
// update on a plain int is invisible to the reduction, which then runs one schedule and
// misses it; without reduction it is found.
TEST(Dpor, UndeclaredSharedMemoryIsOutsideTheContract) {
  auto plain_int_lost_update = [] {
    int counter = 0;
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int t = 0; t < 2; ++t) {
        n.start_soon([&] {
          const int read = counter;
          trellis::checkpoint();
          counter = read + 1;
        });
      }
    });
    if (counter != 2) throw std::runtime_error("lost update");
  };
  EXPECT_TRUE(explore_exhaustively(plain_int_lost_update, unreduced(2)).failure.has_value());
  const ExhaustiveResult reduced = explore_exhaustively(plain_int_lost_update, kDpor);
  EXPECT_FALSE(reduced.failure.has_value());
  EXPECT_EQ(reduced.schedules, 1u);
}

// Opaque steps: cancelling and the clock make a step dependent on every other.
TEST(Dpor, OpaqueStepsAreDependentOnEverything) {
  auto body = [](std::set<std::string>* orders) {
    std::string order;
    trellis::open_nursery([&](trellis::Nursery& n) {
      n.start_soon([&] {
        trellis::checkpoint();
        order.push_back('a');
        (void)trellis::current_time();  // opaque
      });
      n.start_soon([&] {
        trellis::checkpoint();
        order.push_back('b');
        (void)trellis::current_time();
      });
    });
    orders->insert(order);
  };
  std::set<std::string> orders;
  const ExhaustiveResult r = explore_exhaustively([&] { body(&orders); }, kDpor);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(orders, (std::set<std::string>{"ab", "ba"}));
}

// A World: the same race between two tasks of a host, declared, explored for one seed.
void world_counter(trellis::sim::World& world, bool fixed) {
  trellis::sim::Host& h = world.add_host("h", "10.0.0.1");
  Shared<int> counter{0};
  h.start([&] {
    trellis::Lock lock;
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int t = 0; t < 2; ++t) {
        n.start_soon([&] {
          if (fixed) lock.acquire();
          const int read = counter.load();
          trellis::checkpoint();
          counter.store(read + 1);
          if (fixed) lock.release();
        });
      }
    });
  });
  world.run([&] { trellis::sleep(1s); });
  if (counter.load() != 2) throw std::runtime_error("lost update");
}

void world_lost_update(trellis::sim::World& world) {
  world_counter(world, false);
}

TEST(Dpor, ExploresAWorldAndReplays) {
  trellis::sim::Config config;
  config.seed = 3;
  config.cpu.step_time_ppm = 0;
  const ExhaustiveResult r = trellis::sim::explore_simulation(world_lost_update, config, kDpor);
  ASSERT_TRUE(r.failure.has_value());
  const ExhaustiveResult plain =
      trellis::sim::explore_simulation(world_lost_update, config, unreduced(2));
  ASSERT_TRUE(plain.failure.has_value());
  std::printf("World lost update: found at schedule %zu without reduction, %zu with DPOR\n",
              plain.schedules, r.schedules);
  const trellis::sim::Config replay =
      trellis::sim::replay_config(r.failure->replay("Dpor.World"), trellis::sim::Config{});
  const trellis::sim::RunResult again = trellis::sim::run_simulation(world_lost_update, replay);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, r.failure->trace_hash);
  const trellis::sim::SimBody fixed = [](trellis::sim::World& world) {
    world_counter(world, true);
  };
  const ExhaustiveResult proved = trellis::sim::explore_simulation(fixed, config, kDpor);
  const ExhaustiveResult bounded = trellis::sim::explore_simulation(fixed, config, unreduced(2));
  EXPECT_TRUE(proved.complete);
  EXPECT_FALSE(proved.failure.has_value());
  EXPECT_TRUE(bounded.complete);
  std::printf("World fixed: %zu schedules for bound 2, %zu with DPOR for every trace\n",
              bounded.schedules, proved.schedules);
}

TEST(Dpor, PolicySpecNamesIt) {
  const auto spec = trellis::sim::parse_policy_spec("exhaustive:reduction=dpor,budget=500");
  EXPECT_TRUE(spec.exhaustive);
  EXPECT_EQ(spec.exhaustive_options.reduction, Reduction::kDpor);
  EXPECT_EQ(spec.exhaustive_options.schedules_max, 500u);
  EXPECT_EQ(spec.name(), "exhaustive:reduction=dpor,budget=500");
  EXPECT_EQ(
      trellis::sim::parse_policy_spec("exhaustive:reduction=none").exhaustive_options.reduction,
      Reduction::kNone);
  EXPECT_THROW(trellis::sim::parse_policy_spec("exhaustive:reduction=sleep"),
               std::invalid_argument);
}

// TRELLIS_POLICY selects it for an async test (the fixed canary of exhaustive_test.cc).
TEST(Dpor, EnvironmentSelectsIt) {
  int status = 0;
  const std::string out = trellis::sim::testing::run_child(
      "TRELLIS_CANARY=1 TRELLIS_CANARY_FIXED=1 "
      "TRELLIS_POLICY=exhaustive:reduction=dpor,budget=1000",
      "ExhaustiveCanary.AsyncLostUpdate", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("with DPOR"), std::string::npos) << out;
  EXPECT_NE(out.find("complete, every Mazurkiewicz trace"), std::string::npos) << out;
}

// Random small programs: 2 or 3 tasks of 1 to 3 steps, each step reading or writing one of
// 2 declared variables. The final states (variables and what each task read) reachable with
// reduction are exactly those reachable without.
struct Op {
  int var;
  bool write;
};

std::vector<int> run_program(const std::vector<std::vector<Op>>& program) {
  std::vector<Shared<int>> vars(2);
  std::vector<int> seen(program.size(), 0);
  trellis::open_nursery([&](trellis::Nursery& n) {
    for (std::size_t t = 0; t < program.size(); ++t) {
      n.start_soon([&, t] {
        for (std::size_t i = 0; i < program[t].size(); ++i) {
          if (i > 0) trellis::checkpoint();
          const Op& op = program[t][i];
          if (op.write) {
            vars[op.var].store(seen[t] * 10 + static_cast<int>(t) + 1);
          } else {
            seen[t] = seen[t] * 7 + vars[op.var].load();
          }
        }
      });
    }
  });
  std::vector<int> state = seen;
  for (const Shared<int>& var : vars) state.push_back(var.load());
  return state;
}

RC_GTEST_PROP(Dpor, ReachesTheSameFinalStatesAsFullExploration, ()) {
  const int tasks = *rc::gen::inRange(2, 4);
  std::vector<std::vector<Op>> program(static_cast<std::size_t>(tasks));
  int steps_total = 0;
  for (auto& ops : program) {
    const int steps = *rc::gen::inRange(1, tasks == 2 ? 4 : 3);
    for (int i = 0; i < steps; ++i) {
      ops.push_back(Op{*rc::gen::inRange(0, 2), *rc::gen::arbitrary<bool>()});
    }
    steps_total += steps;
  }
  std::set<std::vector<int>> plain_states, reduced_states;
  const ExhaustiveResult plain = explore_exhaustively(
      [&] { plain_states.insert(run_program(program)); }, unreduced(steps_total));
  const ExhaustiveResult reduced =
      explore_exhaustively([&] { reduced_states.insert(run_program(program)); }, kDpor);
  RC_ASSERT(plain.complete);
  RC_ASSERT(reduced.complete);
  RC_ASSERT(reduced_states == plain_states);
  RC_ASSERT(reduced.schedules <= plain.schedules);
}

// ---- Bounded reduction (Reduction::kBoundedDpor) ---------------------------------------------

ExhaustiveOptions bounded_reduced(int preemption_bound) {
  return {.preemption_bound = preemption_bound,
          .schedules_max = 100'000,
          .reduction = Reduction::kBoundedDpor};
}

// Within the same bound, the bounded reduction reaches exactly the final states that every
// schedule reaches, in no more schedules.
RC_GTEST_PROP(BoundedDpor, ReachesTheSameFinalStatesAsTheBoundAlone, ()) {
  const int tasks = *rc::gen::inRange(2, 4);
  std::vector<std::vector<Op>> program(static_cast<std::size_t>(tasks));
  for (auto& ops : program) {
    const int steps = *rc::gen::inRange(1, tasks == 2 ? 5 : 4);
    for (int i = 0; i < steps; ++i) {
      ops.push_back(Op{*rc::gen::inRange(0, 2), *rc::gen::arbitrary<bool>()});
    }
  }
  const int bound = *rc::gen::inRange(0, 3);
  std::set<std::vector<int>> plain_states, reduced_states;
  const ExhaustiveResult plain =
      explore_exhaustively([&] { plain_states.insert(run_program(program)); }, unreduced(bound));
  const ExhaustiveResult reduced = explore_exhaustively(
      [&] { reduced_states.insert(run_program(program)); }, bounded_reduced(bound));
  RC_ASSERT(plain.complete);
  RC_ASSERT(reduced.complete);
  RC_ASSERT(reduced_states == plain_states);
  RC_ASSERT(reduced.schedules <= plain.schedules);
  RC_CLASSIFY(reduced.schedules < plain.schedules, "fewer schedules");
}

// The planted races: found at the same bound as without reduction, in no more schedules; the
// fixed versions proved for the bound in fewer.
TEST(BoundedDpor, FindsThePlantedRacesAtTheBoundInNoMoreSchedules) {
  struct Case {
    const char* name;
    std::function<void(bool)> body;
    int bound;
  };
  const Case cases[] = {
      {"deep race", [](bool fixed) { deep_race(fixed); }, 1},
      {"deep race", [](bool fixed) { deep_race(fixed); }, 2},
      {"lost update, 2 tasks", [](bool fixed) { lost_update(fixed, 2); }, 2},
      {"lost update, 3 tasks", [](bool fixed) { lost_update(fixed, 3); }, 2},
  };
  for (const Case& c : cases) {
    const ExhaustiveResult plain = explore_exhaustively([&] { c.body(false); }, unreduced(c.bound));
    const ExhaustiveResult reduced =
        explore_exhaustively([&] { c.body(false); }, bounded_reduced(c.bound));
    ASSERT_TRUE(plain.failure.has_value()) << c.name;
    ASSERT_TRUE(reduced.failure.has_value()) << c.name;
    EXPECT_LE(reduced.schedules, plain.schedules) << c.name;
    EXPECT_LE(reduced.failure_preemptions, c.bound) << c.name;
    trellis::sim::DecisionPolicy replay(reduced.failure->decisions);
    EXPECT_THROW(trellis::sim::run_unit_with([&] { c.body(false); }, replay), std::runtime_error)
        << c.name;
    const ExhaustiveResult plain_fixed =
        explore_exhaustively([&] { c.body(true); }, unreduced(c.bound));
    const ExhaustiveResult reduced_fixed =
        explore_exhaustively([&] { c.body(true); }, bounded_reduced(c.bound));
    EXPECT_TRUE(plain_fixed.complete) << c.name;
    EXPECT_TRUE(reduced_fixed.complete) << c.name;
    EXPECT_FALSE(reduced_fixed.failure.has_value()) << c.name;
    EXPECT_LE(reduced_fixed.schedules, plain_fixed.schedules) << c.name;
    std::printf(
        "%s, bound %d: found at schedule %zu without reduction, %zu with bounded reduction; "
        "fixed: %zu schedules without, %zu with (%zu subtrees skipped)\n",
        c.name, c.bound, plain.schedules, reduced.schedules, plain_fixed.schedules,
        reduced_fixed.schedules, reduced_fixed.pruned_subtrees);
  }
}

TEST(BoundedDpor, CountsOnTheSharedCounter) {
  for (int rounds : {1, 2}) {
    for (int bound : {0, 1, 2}) {
      const CounterRun plain = explore_counter(rounds, unreduced(bound));
      const CounterRun reduced = explore_counter(rounds, bounded_reduced(bound));
      ASSERT_TRUE(plain.result.complete);
      ASSERT_TRUE(reduced.result.complete);
      EXPECT_EQ(reduced.outcomes, plain.outcomes) << rounds << " " << bound;
      EXPECT_EQ(reduced.traces, plain.traces) << rounds << " " << bound;
      EXPECT_LE(reduced.result.schedules, plain.result.schedules);
      std::printf(
          "counter, %d increment(s) per task, bound %d: %zu schedules without reduction, "
          "%zu with bounded reduction, %zu traces\n",
          rounds, bound, plain.result.schedules, reduced.result.schedules, plain.traces.size());
    }
  }
}

TEST(BoundedDpor, PolicySpecWithABoundSelectsIt) {
  const trellis::sim::PolicySpec bounded =
      trellis::sim::parse_policy_spec("exhaustive:preemptions=2,reduction=dpor");
  EXPECT_EQ(bounded.exhaustive_options.reduction, Reduction::kBoundedDpor);
  EXPECT_EQ(bounded.exhaustive_options.preemption_bound, 2);
  EXPECT_EQ(trellis::sim::parse_policy_spec(bounded.name()).exhaustive_options.reduction,
            Reduction::kBoundedDpor);
  EXPECT_EQ(
      trellis::sim::parse_policy_spec("exhaustive:reduction=dpor").exhaustive_options.reduction,
      Reduction::kDpor);
}

TEST(BoundedDpor, ExploresAWorldReplaysAndProvesTheFixForTheBound) {
  trellis::sim::Config config;
  config.seed = 3;
  config.cpu.step_time_ppm = 0;
  const ExhaustiveResult plain =
      trellis::sim::explore_simulation(world_lost_update, config, unreduced(2));
  const ExhaustiveResult r =
      trellis::sim::explore_simulation(world_lost_update, config, bounded_reduced(2));
  ASSERT_TRUE(plain.failure.has_value());
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_LE(r.schedules, plain.schedules);
  const trellis::sim::Config replay =
      trellis::sim::replay_config(r.failure->replay("BoundedDpor.World"), trellis::sim::Config{});
  const trellis::sim::RunResult again = trellis::sim::run_simulation(world_lost_update, replay);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, r.failure->trace_hash);
  const trellis::sim::SimBody fixed = [](trellis::sim::World& world) {
    world_counter(world, true);
  };
  const ExhaustiveResult bounded = trellis::sim::explore_simulation(fixed, config, unreduced(2));
  const ExhaustiveResult reduced =
      trellis::sim::explore_simulation(fixed, config, bounded_reduced(2));
  EXPECT_TRUE(bounded.complete);
  EXPECT_TRUE(reduced.complete);
  EXPECT_FALSE(reduced.failure.has_value());
  EXPECT_LE(reduced.schedules, bounded.schedules);
  EXPECT_NE(describe(reduced, bounded_reduced(2)).find("with bounded reduction"),
            std::string::npos);
  std::printf(
      "World: lost update found at schedule %zu for bound 2, %zu with bounded reduction; "
      "fixed: %zu schedules for bound 2, %zu with bounded reduction\n",
      plain.schedules, r.schedules, bounded.schedules, reduced.schedules);
}

}  // namespace
