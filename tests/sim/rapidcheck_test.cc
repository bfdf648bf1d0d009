// RapidCheck integration: generated schedules and fault plans find a race and a crash bug,
// shrink them to minimal counterexamples, and the replay file written for the minimal one
// reproduces it in a fresh run. Also: fault plans inject what they say, and replay files
// carry them.
#include "trellis/sim/rapidcheck.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(::getpid());
}

// Two tasks increment a counter with a read, a checkpoint, then a write: a lost update
// needs one task to run between the other's read and write.
SimBody racy_counter() {
  return [](World& world) {
    int counter = 0;
    Host& host = world.add_host("h", "10.0.0.1");
    host.start([&] {
      open_nursery([&](Nursery& n) {
        for (int t = 0; t < 2; ++t) {
          n.start_soon([&] {
            const int read = counter;
            checkpoint();
            counter = read + 1;
          });
        }
      });
    });
    world.run([&] { sleep(1s); });
    if (counter != 2)
      throw std::runtime_error("lost update: counter is " + std::to_string(counter));
  };
}

// A server keeps acknowledged increments in memory only; a crash loses them.
SimBody volatile_server(int* acknowledged_out = nullptr) {
  return [acknowledged_out](World& world) {
    int stored = 0;
    int acknowledged = 0;
    Host& server = world.add_host("server", "10.0.0.1");
    Host& client = world.add_host("client", "10.0.0.2");
    server.start([&] {
      stored = 0;  // after a restart: nothing survived
      sleep_forever();
    });
    client.start([&] {
      for (int i = 0; i < 50; ++i) {
        sleep(10ms);
        if (!server.alive()) continue;
        ++stored;
        ++acknowledged;
      }
    });
    world.run([&] { sleep(1s); });
    if (acknowledged_out != nullptr) *acknowledged_out = acknowledged;
    if (stored != acknowledged) {
      throw std::runtime_error("acknowledged " + std::to_string(acknowledged) + " increments, " +
                               std::to_string(stored) + " stored");
    }
  };
}

TEST(RapidCheckSchedules, FindAndShrinkALostUpdate) {
  const std::string path = temp_path("lost_update.replay");
  const bool passed = rc::check("lost update", [&] {
    const auto decisions = *gen::schedule(64, 3);
    check_generated(racy_counter(), Config{.seed = 1}, decisions, {}, path, "lost_update");
  });
  ASSERT_FALSE(passed);
  const ReplayFile minimal = read_replay_file(path);
  // The race needs only a couple of non-FIFO choices; RapidCheck's shrinking removes the rest.
  EXPECT_LE(minimal.decisions.size(), 4u);
  EXPECT_TRUE(minimal.fault_plan.empty());
  // A fresh run of the replay file fails the same way.
  const RunResult again = run_simulation(racy_counter(), replay_config(minimal));
  EXPECT_TRUE(again.failed);
  EXPECT_NE(again.failure.find("lost update"), std::string::npos) << again.failure;
  std::remove(path.c_str());
}

TEST(RapidCheckFaultPlans, FindAndShrinkACrashThatLosesAcknowledgedWrites) {
  const std::string path = temp_path("volatile.replay");
  const bool passed = rc::check("volatile server", [&] {
    const auto plan = *gen::fault_plan(2, 600ms, 4);
    check_generated(volatile_server(), Config{.seed = 1}, {}, plan, path, "volatile");
  });
  ASSERT_FALSE(passed);
  const ReplayFile minimal = read_replay_file(path);
  ASSERT_EQ(minimal.fault_plan.faults.size(), 1u);  // one crash of the server is enough
  const PlannedFault& crash = minimal.fault_plan.faults.front();
  EXPECT_EQ(crash.kind, PlannedFault::Kind::kCrash);
  EXPECT_EQ(crash.a % 2, 0u);  // the server
  EXPECT_TRUE(run_simulation(volatile_server(), replay_config(minimal)).failed);
  std::remove(path.c_str());
}

RC_GTEST_PROP(RapidCheckSchedules, ACorrectProgramPassesEveryGeneratedScheduleAndPlan, ()) {
  // The counter with its read and write in one step, and a server that persists nothing
  // but is never crashed: nothing generated can break them.
  const auto decisions = *gen::schedule(64, 3);
  auto plan = *gen::fault_plan(2, 600ms, 4);
  for (PlannedFault& f : plan.faults) {
    if (f.kind == PlannedFault::Kind::kCrash) f.kind = PlannedFault::Kind::kClog;
  }
  const SimBody body = [](World& world) {
    int counter = 0;
    world.add_host("h", "10.0.0.1").start([&] {
      open_nursery([&](Nursery& n) {
        for (int t = 0; t < 3; ++t) {
          n.start_soon([&] {
            checkpoint();
            ++counter;
          });
        }
      });
    });
    world.add_host("other", "10.0.0.2").start([] { sleep_forever(); });
    world.run([&] { sleep(1s); });
    if (counter != 3) throw std::runtime_error("counter " + std::to_string(counter));
  };
  check_generated(body, Config{.seed = 1}, decisions, plan, temp_path("never.replay"));
}

TEST(FaultPlan, InjectsCrashesAndPartitionsAtTheirTimes) {
  Config config{.seed = 2};
  config.fault_plan.faults = {
      {.kind = PlannedFault::Kind::kCrash, .at = 100ms, .a = 0, .duration = 50ms},
      {.kind = PlannedFault::Kind::kPartition, .at = 300ms, .a = 0, .b = 1, .duration = 100ms},
      {.kind = PlannedFault::Kind::kPartition, .at = 0ms, .a = 1, .b = 1, .duration = 1s},
  };
  World world(config);
  Host& a = world.add_host("a", "10.0.0.1");
  Host& b = world.add_host("b", "10.0.0.2");
  int starts = 0;
  a.start([&] {
    ++starts;
    sleep_forever();
  });
  b.start([] { sleep_forever(); });
  std::vector<bool> alive;
  world.run([&] {
    for (int ms : {50, 120, 160, 500}) {
      sleep_until(Time(std::chrono::milliseconds(ms)));
      alive.push_back(a.alive());
    }
  });
  EXPECT_EQ(alive, (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(starts, 2);
}

TEST(FaultPlan, TravelsInReplayFilesAndBadFaultLinesAreClearErrors) {
  ReplayFile replay;
  replay.scenario = "x";
  replay.seed = 3;
  replay.fault_plan.faults = {
      {.kind = PlannedFault::Kind::kSlowLink,
       .at = 5ms,
       .a = 1,
       .b = 2,
       .duration = 7ms,
       .latency = 3ms},
      {.kind = PlannedFault::Kind::kCrash, .at = 0ms, .a = 0, .duration = 0ms}};
  EXPECT_EQ(parse_replay_file(format_replay_file(replay)), replay);
  const std::string header = "trellis-replay 1\nscenario x\nseed 1\ndecisions 0\n";
  for (const char* bad : {"fault crash 1 2 3\n", "fault boom 0 0 0 0 0\n",
                          "fault crash -1 0 0 0 0\n", "fault crash x 0 0 0 0\n"}) {
    try {
      parse_replay_file(header + bad + "end\n");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ReplayFileError& e) {
      EXPECT_EQ(e.line(), 5u) << bad;
    }
  }
}

TEST(FaultPlan, ShrinkDropsTheFaultsAFailureDoesNotNeed) {
  Config config{.seed = 4};
  config.fault_plan.faults = {
      {.kind = PlannedFault::Kind::kClog, .at = 10ms, .a = 0, .b = 1, .duration = 20ms},
      {.kind = PlannedFault::Kind::kCrash, .at = 200ms, .a = 0, .duration = 10ms},
      {.kind = PlannedFault::Kind::kPartition, .at = 300ms, .a = 0, .b = 1, .duration = 10ms},
  };
  const RunResult failing = run_simulation(volatile_server(), config);
  ASSERT_TRUE(failing.failed);
  const ShrinkResult minimal = shrink(volatile_server(), failing);
  ASSERT_EQ(minimal.run.config.fault_plan.faults.size(), 1u);
  EXPECT_EQ(minimal.run.config.fault_plan.faults[0].kind, PlannedFault::Kind::kCrash);
  EXPECT_TRUE(minimal.run.failed);
}

TEST(FaultPlan, ShrinkShortensAndRoundsFaultsAndSummarizesThem) {
  Config config{.seed = 4};
  config.fault_plan.faults = {
      {.kind = PlannedFault::Kind::kCrash, .at = 234ms, .a = 0, .duration = 40ms}};
  const RunResult failing = run_simulation(volatile_server(), config);
  ASSERT_TRUE(failing.failed);
  EXPECT_EQ(failing.fault_summary(), "crash server at 0.234s, restart at 0.274s");
  const ShrinkResult minimal = shrink(volatile_server(), failing);
  ASSERT_EQ(minimal.faults_after(), 1u);
  const PlannedFault& crash = minimal.run.config.fault_plan.faults[0];
  EXPECT_EQ(crash.at, 200ms);         // rounded down to 100 ms
  EXPECT_EQ(crash.duration, 1250us);  // halved while it still fails, down to 1 ms
  EXPECT_EQ(minimal.run.fault_summary(), "crash server at 0.2s, restart at 0.201s");
  EXPECT_EQ(minimal.faults_before, 1u);
  EXPECT_TRUE(run_simulation(volatile_server(), minimal.run.config).failed);
}

TEST(FaultPlan, SummaryNamesEveryKind) {
  FaultPlan plan;
  plan.faults = {
      {.kind = PlannedFault::Kind::kPartition, .at = 2s, .a = 1, .b = 0, .duration = 400ms},
      {.kind = PlannedFault::Kind::kPartitionOneWay, .at = 1ms, .a = 0, .b = 1, .duration = 1ms},
      {.kind = PlannedFault::Kind::kClog, .at = 0ms, .a = 0, .b = 1, .duration = 50ms},
      {.kind = PlannedFault::Kind::kSlowLink,
       .at = 0ms,
       .a = 0,
       .b = 1,
       .duration = 1s,
       .latency = 5ms},
      {.kind = PlannedFault::Kind::kKillProcess, .at = 500ms, .a = 1, .b = 2}};
  EXPECT_EQ(summarize(plan, {"a", "b"}),
            "partition b|a at 2s-2.4s; partition a->b at 0.001s-0.002s; clog a->b at 0s-0.05s; "
            "slow link a|b (5ms) at 0s-1s; kill program 2 of b at 0.5s");
  EXPECT_EQ(describe(plan.faults.back()), "kill_process 2 on host 1 at 500ms");
  EXPECT_EQ(parse_planned_fault_name("kill_process"), PlannedFault::Kind::kKillProcess);
  EXPECT_EQ(summarize(FaultPlan{}, {}), "no faults");
}

TEST(Shrink, CountsNonDefaultDecisions) {
  EXPECT_EQ(non_default_decisions({}), 0u);
  EXPECT_EQ(non_default_decisions({0, 3, 0, 1, 0}), 2u);
}

// Two tasks take turns for 30 rounds; the run fails only if task b runs first in round 20:
// a late race. Shrinking keeps the one choice it needs (not every choice before it).
SimBody late_race() {
  return [](World& world) {
    std::vector<std::pair<int, char>> log;
    world.run([&] {
      open_nursery([&](Nursery& n) {
        for (char name : {'a', 'b'}) {
          n.start_soon([&log, name] {
            for (int round = 0; round < 30; ++round) {
              log.emplace_back(round, name);
              checkpoint();
            }
          });
        }
      });
    });
    for (std::size_t i = 0; i < log.size(); ++i) {
      if (log[i].first == 20) {
        if (log[i].second == 'b') throw std::runtime_error("b ran first in round 20");
        break;
      }
    }
  };
}

TEST(Shrink, KeepsOnlyTheNonDefaultDecisionsALateRaceNeeds) {
  std::optional<RunResult> failing;
  for (std::uint64_t seed = 1; seed <= 200 && !failing; ++seed) {
    RunResult r = run_simulation(late_race(), Config{.seed = seed});
    if (r.failed) failing = std::move(r);
  }
  ASSERT_TRUE(failing.has_value()) << "no seed in 1..200 fails";
  const ShrinkResult minimal = shrink(late_race(), *failing);
  ASSERT_TRUE(minimal.run.failed);
  EXPECT_GT(minimal.non_default_before, 5u);
  EXPECT_LE(minimal.non_default_after(), 2u);
  EXPECT_EQ(minimal.non_default_after(), non_default_decisions(minimal.run.config.decisions));
  EXPECT_TRUE(run_simulation(late_race(), minimal.run.config).failed);
}

}  // namespace
}  // namespace trellis::sim
