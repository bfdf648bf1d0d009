// to_process inside the simulator: the same run_sync and pool code, with the worker loop
// running as a fake program on the calling host (no real process), each call taking virtual
// time, and worker crashes injected by a buggify fault point or by a planned kill_process
// fault (recorded in the replay file, shrunk with the schedule). A program that retries on
// BrokenWorkerError survives a sweep; its twin without the retry is found.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "../sim/child_process.h"
#include "trellis/base/prng.h"
#include "trellis/sim.h"
#include "trellis/to_process.h"
#include "trellis/trellis.h"

namespace trellis::to_process {
namespace {

using namespace std::chrono_literals;

constexpr Duration kCallDuration = 5ms;  // the virtual time a worker spends on a call

// Installs the worker loop as the host's "executable": each call takes kCallDuration of
// virtual time and, with crash_point, where the seed enables the fault point, sometimes
// crashes the worker.
void install_worker(sim::Host& host, bool crash_point = true) {
  host.install_program(std::string(kSelfExecutable), [crash_point](sim::ProgramIo& io) {
    return serve_worker_streams(io.in, io.out, io.argv, [crash_point](std::string_view) {
      sleep(kCallDuration);
      if (crash_point && sim::buggify("to_process.worker_crash", 0.3)) {
        throw std::runtime_error("injected worker crash");  // the program aborts
      }
    });
  });
}

// Sums add(i, 1) for i < 20 over a pool of two workers, four tasks at a time.
int sum_in_workers(bool retry, int& crashes) {
  CapacityLimiter limiter(2);
  WorkerContext context({.max_workers = 2});
  Options options{.limiter = &limiter, .context = &context};
  int sum = 0;
  open_nursery([&](Nursery& nursery) {
    for (int t = 0; t < 4; ++t) {
      nursery.start_soon([&, t] {
        for (int i = t; i < 20; i += 4) {
          for (;;) {
            try {
              sum += run_sync<int>(options, "add", i, 1);
              break;
            } catch (const BrokenWorkerError&) {
              ++crashes;
              if (!retry) throw;
            }
          }
        }
      });
    }
  });
  return sum;
}

sim::SimBody program(bool retry, int& crashes, bool crash_point = true) {
  return [retry, &crashes, crash_point](sim::World& world) {
    sim::Host& host = world.add_host("h", "10.0.0.1");
    install_worker(host, crash_point);
    bool done = false;
    host.start([&] {
      if (sum_in_workers(retry, crashes) != 210) throw std::logic_error("wrong sum");
      done = true;
    });
    world.run([&] {
      while (!done) sleep(1ms);
    });
  };
}

TEST(ToProcessSim, RunSyncRunsOnTheHostInVirtualTimeDeterministically) {
  auto body = [](sim::World& world) {
    sim::Host& host = world.add_host("h", "10.0.0.1");
    install_worker(host);
    bool done = false;
    host.start([&] {
      // What the OS decides does not reach a simulated run: a fixed CPU count.
      EXPECT_EQ(current_default_worker_limiter().total_tokens(), 4u);
      WorkerContext context;
      Options options{.context = &context};
      const Time start = current_time();
      EXPECT_EQ(run_sync<std::string>(options, "greet", "sim"), "hello, sim");
      EXPECT_GE(current_time() - start, kCallDuration);
      EXPECT_EQ(run_sync<int>(options, "add", 2, 3), 5);
      EXPECT_THROW(run_sync<int>(options, "throws_out_of_range", 1), WorkerError);
      EXPECT_EQ(context.statistics().workers_started, 1u);
      // A cancellable call cancelled mid-call: the simulated worker is killed, at once.
      Options cancellable{.cancellable = true, .context = &context};
      const Time before = current_time();
      move_on_after(1ms, [&] { run_sync<int>(cancellable, "add", 1, 1); });
      EXPECT_EQ(current_time() - before, 1ms);
      EXPECT_EQ(context.statistics().workers_stopped, 1u);
      EXPECT_EQ(run_sync<int>(options, "add", 1, 1), 2);  // a new worker
      EXPECT_EQ(context.statistics().workers_started, 2u);
      done = true;
    });
    world.run([&] {
      while (!done) sleep(1ms);
    });
  };
  sim::Config config{.seed = 11, .buggify_enable_ppm = 0};
  const sim::RunResult first = sim::run_simulation(body, config);
  EXPECT_FALSE(first.failed) << first.failure;
  EXPECT_EQ(sim::check_determinism(body, config), std::nullopt);
}

TEST(ToProcessSim, ASweepWithWorkerCrashesPassesWhenTheProgramRetries) {
  int crashes = 0;
  int seeds_with_crashes = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const int before = crashes;
    const sim::RunResult r = sim::run_simulation(program(true, crashes), {.seed = seed});
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    if (crashes > before) ++seeds_with_crashes;
  }
  EXPECT_GT(seeds_with_crashes, 0);  // the fault was injected, and survived
}

TEST(ToProcessSim, TheTwinWithoutRetryIsFoundAndReplays) {
  int crashes = 0;
  std::optional<sim::RunResult> failing;
  for (std::uint64_t seed = 1; seed <= 40 && !failing; ++seed) {
    sim::RunResult r = sim::run_simulation(program(false, crashes), {.seed = seed});
    if (r.failed) failing = r;
  }
  ASSERT_TRUE(failing.has_value()) << "no seed crashed a worker";
  EXPECT_NE(failing->failure.find("died with SIGABRT"), std::string::npos) << failing->failure;
  const sim::RunResult again = sim::run_simulation(program(false, crashes), failing->config);
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, failing->trace_hash);
}

// ---- Worker crashes as planned faults --------------------------------------------------

// A sweep's fault plan for one seed: 2 to 5 kills of the host's programs (its workers) at
// virtual times within the ~50 ms the sum takes, drawn from the seed alone.
sim::FaultPlan planned_kills(std::uint64_t seed) {
  Prng prng(seed * 0x9e3779b97f4a7c15ULL + 18);
  sim::FaultPlan plan;
  const std::uint64_t kills = 2 + prng.below(4);
  for (std::uint64_t i = 0; i < kills; ++i) {
    plan.faults.push_back({.kind = sim::PlannedFault::Kind::kKillProcess,
                           .at = std::chrono::microseconds(prng.below(60'000)),
                           .a = 0,
                           .b = static_cast<std::uint32_t>(prng.below(4))});
  }
  return plan;
}

sim::Config kill_config(std::uint64_t seed) {
  sim::Config config{.seed = seed};
  config.fault_plan = planned_kills(seed);
  return config;
}

std::size_t kills_in(const sim::FaultPlan& plan) {
  std::size_t n = 0;
  for (const sim::PlannedFault& f : plan.faults) {
    n += f.kind == sim::PlannedFault::Kind::kKillProcess ? 1 : 0;
  }
  return n;
}

TEST(ToProcessSimFaults, PlannedKillsBreakCallsThatARetryingProgramSurvives) {
  int crashes = 0;
  int seeds_with_crashes = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const int before = crashes;
    // Crashes come from the plan only: no crash point in the worker.
    const sim::RunResult r = sim::run_simulation(program(true, crashes, false), kill_config(seed));
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure;
    if (crashes > before) ++seeds_with_crashes;
  }
  EXPECT_GT(seeds_with_crashes, 0);  // the kills landed on busy workers
}

TEST(ToProcessSimFaults, TheTwinWithoutRetryIsFoundReplayedFromItsFileAndShrunk) {
  int crashes = 0;
  const sim::SimBody twin = program(false, crashes, false);  // crashes: the plan's only
  std::optional<sim::RunResult> failing;
  for (std::uint64_t seed = 1; seed <= 20 && !failing; ++seed) {
    sim::RunResult r = sim::run_simulation(twin, kill_config(seed));
    if (r.failed) failing = std::move(r);
  }
  ASSERT_TRUE(failing.has_value()) << "no planned kill broke a call";
  EXPECT_NE(failing->failure.find("died with SIGKILL"), std::string::npos) << failing->failure;
  EXPECT_NE(failing->fault_summary().find("kill program"), std::string::npos)
      << failing->fault_summary();

  // The replay file carries the kills and reruns the failure exactly.
  const std::string text = sim::format_replay_file(failing->replay("to_process_no_retry"));
  EXPECT_NE(text.find("\nfault kill_process "), std::string::npos) << text;
  const sim::ReplayFile parsed = sim::parse_replay_file(text);
  EXPECT_EQ(parsed.fault_plan, failing->config.fault_plan);
  const sim::RunResult again = sim::run_simulation(twin, sim::replay_config(parsed));
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, failing->trace_hash);

  // Shrinking keeps a kill (nothing else crashes a worker) and at most 3 faults.
  const sim::ShrinkResult minimal = sim::shrink(twin, *failing);
  EXPECT_TRUE(minimal.run.failed);
  EXPECT_LE(minimal.faults_after(), 3u) << minimal.run.fault_summary();
  EXPECT_LE(minimal.faults_after(), minimal.faults_before);
  EXPECT_GE(kills_in(minimal.run.config.fault_plan), 1u);
  const std::string shrunk_text =
      sim::format_replay_file(minimal.run.replay("to_process_no_retry"));
  const sim::Config shrunk = sim::replay_config(sim::parse_replay_file(shrunk_text));
  EXPECT_TRUE(sim::run_simulation(twin, shrunk).failed) << shrunk_text;
}

TEST(ToProcessSimFaults, AKillOfAHostWithoutProgramsDoesNothing) {
  auto body = [](sim::World& world) {
    world.add_host("h", "10.0.0.1");
    world.run([] { sleep(10ms); });
  };
  sim::Config config{.seed = 3};
  config.fault_plan.faults.push_back(
      {.kind = sim::PlannedFault::Kind::kKillProcess, .at = 1ms, .a = 0, .b = 7});
  const sim::RunResult r = sim::run_simulation(body, config);
  EXPECT_FALSE(r.failed) << r.failure;
  EXPECT_EQ(sim::check_determinism(body, config), std::nullopt);
}

// The same seeds give the same hashes in another process (another address-space layout),
// worker crashes and replacements included (tests/sim/child_process.h).
std::uint64_t retrying_program_hash(std::uint64_t seed) {
  int crashes = 0;
  return sim::run_simulation(program(true, crashes), {.seed = seed}).trace_hash;
}

TEST(ToProcessSim, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_TO_PROCESS_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, retrying_program_hash(seed));
  }
}

TEST(ToProcessSim, SameHashInAnotherProcess) {
  const auto theirs = sim::testing::hashes_from_child("ToProcessSim.ChildPrintsHashes",
                                                      "TRELLIS_TO_PROCESS_CHILD_SEEDS", 6);
  ASSERT_EQ(theirs.size(), 6u);
  for (const auto& [seed, hash] : theirs) EXPECT_EQ(retrying_program_hash(seed), hash) << seed;
}

}  // namespace
}  // namespace trellis::to_process
