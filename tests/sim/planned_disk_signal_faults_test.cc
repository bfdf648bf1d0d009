// The fault plan's disk errors and signals (fault_plan.h): a disk_errors window fails a
// host's disk operations with EIO, a program that retries survives a sweep of such windows
// and its twin without retries is found, replayed from its file with the same trace hash and
// shrunk; a planned signal reaches an open_signal_receiver of the host at the planned
// virtual time; both are named, summarized, written to and read back from replay files, and
// deterministic.
#include <signal.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/os_error.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;
using Kind = PlannedFault::Kind;

constexpr int kRecords = 20;
constexpr std::size_t kRecordBytes = 16;

std::string record(int i) {
  std::string out = "record-" + std::to_string(i);
  out.resize(kRecordBytes, '.');
  return out;
}

std::span<const std::byte> bytes_of(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// Runs op; with retry, an EIO makes it wait 2 ms and run again (a disk that fails for a
// while comes back), up to 200 times, counting the retries.
template <class Op>
void with_retry(bool retry, int& retries, Op op) {
  for (int attempt = 0;; ++attempt) {
    try {
      op();
      return;
    } catch (const OSError& e) {
      if (!retry || e.code().value() != EIO || attempt == 200) throw;
      ++retries;
      sleep(2ms);
    }
  }
}

// A log on host 0: kRecords records, each written and fsynced (then acknowledged), then all
// read back and checked. Fails the run if an operation throws, or a record reads back wrong.
SimBody log_program(bool retry, int* retries_out = nullptr) {
  return [retry, retries_out](World& world) {
    int retries = 0;
    Host& db = world.add_host("db", "10.0.0.1");
    bool done = false;
    std::exception_ptr error;
    db.start([&] {
      try {
        AsyncFile log = open_file("/log", "w+");
        for (int i = 0; i < kRecords; ++i) {
          with_retry(retry, retries, [&] { log.pwrite(bytes_of(record(i)), i * kRecordBytes); });
          with_retry(retry, retries, [&] { log.fsync(); });
          sleep(1ms);
        }
        for (int i = 0; i < kRecords; ++i) {
          std::string got(kRecordBytes, '\0');
          with_retry(retry, retries, [&] {
            log.pread(std::as_writable_bytes(std::span(got.data(), got.size())), i * kRecordBytes);
          });
          if (got != record(i)) throw std::runtime_error("record " + std::to_string(i) + " lost");
        }
      } catch (...) {
        error = std::current_exception();
      }
      done = true;
      if (retries_out != nullptr) *retries_out += retries;
    });
    world.run([&] {
      require_progress(10s, "the log finishing", [&] { return done; });
      if (error != nullptr) std::rethrow_exception(error);
    });
  };
}

// 2 to 4 disk-error windows on host 0 within the ~30 ms the log takes, each of a class
// (all, reads, writes, syncs) and 1-10 ms long, from the seed alone.
FaultPlan planned_disk_errors(std::uint64_t seed) {
  Prng prng(seed * 0x9e3779b97f4a7c15ULL + 22);
  FaultPlan plan;
  const std::uint64_t windows = 2 + prng.below(3);
  for (std::uint64_t i = 0; i < windows; ++i) {
    plan.faults.push_back({.kind = Kind::kDiskErrors,
                           .at = std::chrono::microseconds(prng.below(30'000)),
                           .a = 0,
                           .b = static_cast<std::uint32_t>(prng.below(4)),
                           .duration = std::chrono::microseconds(1'000 + prng.below(9'000))});
  }
  return plan;
}

Config disk_config(std::uint64_t seed) {
  Config config{.seed = seed};
  config.fault_plan = planned_disk_errors(seed);
  return config;
}

std::size_t count_events(const Trace& trace, std::string_view text) {
  std::size_t n = 0;
  for (const TraceEvent& event : trace.recent()) n += event.text == text ? 1 : 0;
  return n;
}

TEST(PlannedDiskErrors, AWindowFailsTheDisksOperationsWithEioAndThenEnds) {
  World world(Config{.seed = 4});
  Host& db = world.add_host("db", "10.0.0.1");
  std::vector<int> errors;  // per write: 0 or the errno
  db.start([&] {
    AsyncFile f = open_file("/f", "w");
    for (int i = 0; i < 6; ++i) {
      try {
        f.write("x");
        errors.push_back(0);
      } catch (const OSError& e) {
        errors.push_back(e.code().value());
      }
      sleep(10ms);
    }
  });
  world.run([&] { sleep(100ms); });
  // Without a plan nothing fails; the world under test gets one below.
  EXPECT_EQ(errors, std::vector<int>(6, 0));

  Config planned{.seed = 4};
  planned.fault_plan.faults.push_back(
      {.kind = Kind::kDiskErrors, .at = 15ms, .a = 0, .b = 2, .duration = 20ms});  // writes
  World faulty(planned);
  Host& h = faulty.add_host("db", "10.0.0.1");
  std::vector<int> seen;
  bool read_ok = false;
  h.start([&] {
    AsyncFile f = open_file("/f", "w+");
    for (int i = 0; i < 6; ++i) {
      try {
        f.write("x");
        seen.push_back(0);
      } catch (const OSError& e) {
        seen.push_back(e.code().value());
      }
      if (i == 2) {  // inside the window: reads still work (only writes fail)
        std::array<std::byte, 1> one{};
        read_ok = f.pread(one, 0) == 1;
      }
      sleep(10ms);
    }
  });
  faulty.run([&] { sleep(100ms); });
  // Writes at about 0, 10, 20, 30, 40, 50 ms: those at 20 and 30 fall in [15, 35).
  EXPECT_EQ(seen, (std::vector<int>{0, 0, EIO, EIO, 0, 0}));
  EXPECT_TRUE(read_ok);
  EXPECT_EQ(count_events(faulty.trace(), "disk errors begin"), 1u);
  EXPECT_EQ(count_events(faulty.trace(), "disk errors end"), 1u);
  EXPECT_EQ(count_events(faulty.trace(), "disk EIO (planned)"), 2u);
}

TEST(PlannedDiskErrors, ARetryingProgramSurvivesASweep) {
  int seeds_with_errors = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    int retries = 0;
    const RunResult r = run_simulation(log_program(true, &retries), disk_config(seed));
    ASSERT_FALSE(r.failed) << "seed " << seed << ": " << r.failure << "\n" << r.fault_summary();
    EXPECT_NE(r.fault_summary().find("fail (EIO) on db"), std::string::npos) << r.fault_summary();
    seeds_with_errors += retries > 0 ? 1 : 0;
  }
  EXPECT_GE(seeds_with_errors, 10);  // the windows land on the log's operations
}

TEST(PlannedDiskErrors, TheTwinWithoutRetryIsFoundReplayedFromItsFileAndShrunk) {
  const SimBody twin = log_program(false);
  std::optional<RunResult> failing;
  for (std::uint64_t seed = 1; seed <= 20 && !failing; ++seed) {
    RunResult r = run_simulation(twin, disk_config(seed));
    if (r.failed) failing = std::move(r);
  }
  ASSERT_TRUE(failing.has_value()) << "no disk-error window failed an operation";
  EXPECT_NE(failing->failure.find("Input/output error"), std::string::npos) << failing->failure;

  // The replay file carries the windows and reruns the failure exactly.
  const std::string text = format_replay_file(failing->replay("disk_no_retry"));
  EXPECT_NE(text.find("\nfault disk_errors "), std::string::npos) << text;
  const ReplayFile parsed = parse_replay_file(text);
  EXPECT_EQ(parsed.fault_plan, failing->config.fault_plan);
  const RunResult again = run_simulation(twin, replay_config(parsed));
  EXPECT_TRUE(again.failed);
  EXPECT_EQ(again.trace_hash, failing->trace_hash);

  // Shrinking leaves one window (any one that overlaps an operation fails the run), shorter.
  const ShrinkResult minimal = shrink(twin, *failing);
  EXPECT_TRUE(minimal.run.failed);
  EXPECT_GE(minimal.faults_before, 2u);
  EXPECT_EQ(minimal.faults_after(), 1u) << minimal.run.fault_summary();
  EXPECT_EQ(minimal.run.config.fault_plan.faults[0].kind, Kind::kDiskErrors);
  std::printf("shrunk: %zu -> %zu faults (%s), %zu runs\n", minimal.faults_before,
              minimal.faults_after(), minimal.run.fault_summary().c_str(), minimal.runs);
  const std::string shrunk_text = format_replay_file(minimal.run.replay("disk_no_retry"));
  EXPECT_TRUE(run_simulation(twin, replay_config(parse_replay_file(shrunk_text))).failed)
      << shrunk_text;
}

TEST(PlannedDiskErrors, SameSeedSameHash) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_EQ(check_determinism(log_program(true), disk_config(seed)), std::nullopt) << seed;
    EXPECT_EQ(check_determinism(log_program(false), disk_config(seed)), std::nullopt) << seed;
  }
  // A window changes the run (the trace covers it).
  Config quiet{.seed = 1};
  EXPECT_NE(run_simulation(log_program(true), quiet).trace_hash,
            run_simulation(log_program(true), disk_config(1)).trace_hash);
}

// ---- Signals -------------------------------------------------------------------------------

struct Received {
  int signo = 0;
  Duration after{};  // since the run started
};

// Host 0 listens for SIGHUP and SIGTERM and notes when each arrives; SIGTERM ends it.
std::vector<Received> run_receiver(const Config& config, std::uint64_t* hash,
                                   std::vector<Duration>* delivered) {
  World world(config);
  Host& server = world.add_host("server", "10.0.0.1");
  std::vector<Received> got;
  Time start{};
  server.start([&] {
    open_signal_receiver({SIGHUP, SIGTERM}, [&](SignalReceiver& signals) {
      for (int signo : signals) {
        got.push_back({signo, current_time() - start});
        if (signo == SIGTERM) break;
      }
    });
  });
  Duration trace_start{};
  world.run([&] {
    start = current_time();
    world.trace().record("test start");
    for (const TraceEvent& e : world.trace().recent()) {
      if (e.text == "test start") trace_start = e.time;
    }
    sleep(50ms);
  });
  for (const TraceEvent& e : world.trace().recent()) {
    if (e.text == "signal delivered") delivered->push_back(e.time - trace_start);
  }
  *hash = world.trace().hash();
  return got;
}

Config signal_config(std::uint64_t seed) {
  Config config{.seed = seed};
  config.fault_plan.faults = {
      {.kind = Kind::kSignal, .at = 7ms, .a = 0, .b = SIGHUP},
      {.kind = Kind::kSignal, .at = 12'345us, .a = 0, .b = SIGTERM},
  };
  return config;
}

TEST(PlannedSignals, ReachTheHostsReceiverAtThePlannedVirtualTime) {
  std::uint64_t hash = 0;
  std::vector<Duration> delivered;
  const std::vector<Received> got = run_receiver(signal_config(3), &hash, &delivered);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].signo, SIGHUP);
  EXPECT_EQ(got[1].signo, SIGTERM);
  // Delivered (to the receiver) exactly at the planned times; the receiving task wakes then
  // or a little later (virtual CPU time may hold it back).
  EXPECT_EQ(delivered, (std::vector<Duration>{7ms, 12'345us}));
  EXPECT_GE(got[0].after, 7ms);
  EXPECT_LT(got[0].after, 12ms);
  EXPECT_GE(got[1].after, 12'345us);
}

TEST(PlannedSignals, AreDeterministicAndChangeTheRun) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    std::uint64_t first = 0;
    std::uint64_t second = 0;
    std::vector<Duration> d1;
    std::vector<Duration> d2;
    const auto a = run_receiver(signal_config(seed), &first, &d1);
    const auto b = run_receiver(signal_config(seed), &second, &d2);
    EXPECT_EQ(first, second) << seed;
    EXPECT_EQ(a.size(), b.size());
  }
  std::uint64_t without = 0;
  std::uint64_t with = 0;
  std::vector<Duration> ignored;
  EXPECT_TRUE(run_receiver(Config{.seed = 1}, &without, &ignored).empty());
  run_receiver(signal_config(1), &with, &ignored);
  EXPECT_NE(without, with);
}

TEST(PlannedSignals, WithoutAReceiverSigtermCrashesTheHostAndSigchldIsIgnored) {
  Config config{.seed = 2};
  config.fault_plan.faults = {{.kind = Kind::kSignal, .at = 5ms, .a = 0, .b = SIGCHLD},
                              {.kind = Kind::kSignal, .at = 9ms, .a = 0, .b = SIGTERM}};
  World world(config);
  Host& h = world.add_host("h", "10.0.0.1");
  h.start([] { sleep_forever(); });
  bool alive_at_7 = false;
  world.run([&] {
    sleep(7ms);
    alive_at_7 = h.alive();
    sleep(5ms);
  });
  EXPECT_TRUE(alive_at_7);
  EXPECT_FALSE(h.alive());
  EXPECT_EQ(count_events(world.trace(), "signal ignored"), 1u);
  EXPECT_EQ(count_events(world.trace(), "signal terminates host"), 1u);
}

// ---- Names, summaries, replay files ----------------------------------------------------------

TEST(PlannedDiskAndSignalFaults, AreNamedSummarizedAndTravelInReplayFiles) {
  EXPECT_EQ(planned_fault_name(Kind::kDiskErrors), "disk_errors");
  EXPECT_EQ(planned_fault_name(Kind::kSignal), "signal");
  EXPECT_EQ(parse_planned_fault_name("disk_errors"), Kind::kDiskErrors);
  EXPECT_EQ(parse_planned_fault_name("signal"), Kind::kSignal);
  FaultPlan plan;
  plan.faults = {{.kind = Kind::kDiskErrors, .at = 1200ms, .a = 1, .b = 3, .duration = 300ms},
                 {.kind = Kind::kSignal, .at = 2s, .a = 0, .b = SIGTERM}};
  EXPECT_EQ(summarize(plan, {"client", "db"}),
            "disk syncs fail (EIO) on db at 1.2s-1.5s; signal SIGTERM to client at 2s");
  EXPECT_EQ(describe(plan.faults[0]), "disk_errors (syncs) host 1 at 1200ms for 300ms");
  EXPECT_EQ(describe(plan.faults[1]), "signal SIGTERM to host 0 at 2000ms");

  ReplayFile replay;
  replay.scenario = "x";
  replay.seed = 9;
  replay.fault_plan = plan;
  const std::string text = format_replay_file(replay);
  EXPECT_NE(text.find("fault disk_errors 1200000 1 3 300000 0"), std::string::npos) << text;
  EXPECT_NE(text.find("fault signal 2000000 0 15 0 0"), std::string::npos) << text;
  EXPECT_EQ(parse_replay_file(text).fault_plan, plan);
}

TEST(PlannedDiskAndSignalFaults, ASignalLineWithoutASignalNumberIsAClearError) {
  ReplayFile replay;
  replay.scenario = "x";
  replay.seed = 9;
  replay.fault_plan.faults = {{.kind = Kind::kSignal, .at = 1ms, .a = 0, .b = SIGTERM}};
  const std::string good = format_replay_file(replay);
  for (const char* bad : {" 0 0 0\n", " 65 0 0\n"}) {
    std::string text = good;
    const std::size_t at = text.find(" 15 0 0\n");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, 8, bad);
    try {
      parse_replay_file(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ReplayFileError& e) {
      EXPECT_NE(std::string(e.what()).find("signal number, 1..64"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace trellis::sim
