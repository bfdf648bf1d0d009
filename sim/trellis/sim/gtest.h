// trellis/sim/gtest.h — simulation tests as natural as TEST().
//
//   TRELLIS_SIM_TEST(Replication, SurvivesPartitions) {
//     trellis::sim::Host& a = world.add_host("a", "10.0.0.1");
//     ...
//     world.run([&] { ...; EXPECT_EQ(read(), 42); });
//   }
//
// The body runs once per seed in a fresh World (TRELLIS_SEEDS seeds, default 100, from
// TRELLIS_BASE_SEED, default 1; policy TRELLIS_POLICY, default random, one of
//   fifo | random | pct[:depth=D,steps=S] | exhaustive[:preemptions=P,budget=N,reduction=R]
// (policy_spec.h): pct without steps learns them from a first FIFO run of the base seed;
// exhaustive runs every schedule of the base seed within the preemption bound, at most N
// runs (explore.h), prints how many it ran and whether that covered the bound, and on a
// failure writes its replay file as below).
// A seed fails if the body throws or a GoogleTest assertion fails in it. On the first
// failing seed the test stops, shrinks the schedule to its smallest failing decision stream,
// writes a replay file (TRELLIS_REPLAY_DIR, default the test temp dir) and prints the seed,
// the policy, the decision counts, the file, and ONE command that replays exactly that
// failure:  TRELLIS_REPLAY=<file> <this binary> --gtest_filter=Suite.Name
// Every 20th seed is also run twice and its trace hashes compared (determinism self-check).
// Sharding: under GoogleTest's sharding protocol (GTEST_TOTAL_SHARDS=T,
// GTEST_SHARD_INDEX=k, as Bazel, CTest and CI matrices set them) the macro registers T tests,
// Suite.Name/shard_0 .. shard_T-1, one per shard, and shard_j runs seeds base + i for
// i = j (mod T): one sweep splits across machines with no seed run twice or skipped.
//
// Plain async unit tests, without a world:
//
//   TRELLIS_ASYNC_TEST(Cache, ExpiresEntries) {
//     Cache cache(std::chrono::hours(1));
//     trellis::sleep(std::chrono::hours(2));        // no real time passes
//     EXPECT_FALSE(cache.get("k"));
//   }
//
// runs the body in trellis::run under a MockClock with autojump and a seeded RandomPolicy
// (run_unit), for TRELLIS_SEEDS seeds (default 20) from TRELLIS_BASE_SEED: each seed is one
// schedule of the body's tasks. The first failing seed stops the test and prints the command
// that reruns exactly it. TRELLIS_POLICY works as above (fifo, pct, exhaustive: then a
// failure writes a replay file, and TRELLIS_REPLAY=<file> reruns it).
//
// Header-only glue: include it in test files that link GoogleTest and trellis::sim.
#pragma once

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/sim/decision_policy.h"
#include "trellis/sim/explore.h"
#include "trellis/sim/fifo_policy.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/pct_policy.h"
#include "trellis/sim/policy_spec.h"
#include "trellis/sim/random_policy.h"
#include "trellis/sim/replay_file.h"
#include "trellis/sim/shard.h"

namespace trellis::sim::testing {

inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long parsed = std::strtoull(value, &end, 10);
  if (end == nullptr || *end != '\0') {
    ADD_FAILURE() << name << "=" << value << " is not a number; using " << fallback;
    return fallback;
  }
  return parsed;
}

inline std::string self_executable() {
  char buffer[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return "./this_test";
  return std::string(buffer, static_cast<std::size_t>(n));
}

// Runs body silently (assertion failures captured, not reported) and tells whether it failed.
inline RunResult run_captured(const SimBody& body, const Config& config) {
  ::testing::TestPartResultArray captured;
  std::optional<RunResult> result;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
    result = run_simulation(body, config, [&]() -> std::optional<std::string> {
      for (int i = 0; i < captured.size(); ++i) {
        const ::testing::TestPartResult& part = captured.GetTestPartResult(i);
        if (part.failed()) {
          return std::string(part.file_name() ? part.file_name() : "?") + ":" +
                 std::to_string(part.line_number()) + ": " + part.summary();
        }
      }
      return std::nullopt;
    });
  }
  return *result;
}

// TRELLIS_POLICY parsed (policy_spec.h); random when unset.
inline PolicySpec policy_from_environment() {
  const char* policy = std::getenv("TRELLIS_POLICY");
  if (policy == nullptr || *policy == '\0') return PolicySpec{};
  return parse_policy_spec(policy);
}

// The policy as a reader reruns it ("pct:depth=3,steps=42").
inline std::string policy_label(const Config& config) {
  if (config.policy != PolicyKind::kPct) return std::string(policy_name(config.policy));
  return "pct:depth=" + std::to_string(config.pct_depth) +
         ",steps=" + std::to_string(config.pct_steps_estimate);
}

// A probe over GoogleTest failures captured in `captured` since its last call.
inline FailureProbe new_failures_probe(const ::testing::TestPartResultArray& captured) {
  auto seen = std::make_shared<int>(0);
  return [&captured, seen]() -> std::optional<std::string> {
    std::optional<std::string> failure;
    for (; *seen < captured.size(); ++*seen) {
      const ::testing::TestPartResult& part = captured.GetTestPartResult(*seen);
      if (part.failed() && !failure.has_value()) {
        failure = std::string(part.file_name() ? part.file_name() : "?") + ":" +
                  std::to_string(part.line_number()) + ": " + part.summary();
      }
    }
    return failure;
  };
}

// TRELLIS_POLICY=exhaustive[:...]: every schedule of the body for one seed (explore.h).
inline void run_sim_test_exhaustive(const std::string& test, const std::string& filter,
                                    const SimBody& body, const Config& base,
                                    const ExhaustiveOptions& options) {
  ExhaustiveResult result;
  try {
    ::testing::TestPartResultArray captured;
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
    result = explore_simulation(body, base, options, new_failures_probe(captured));
  } catch (const std::exception& e) {
    FAIL() << "exhaustive exploration of " << test << ": " << e.what();
  }
  std::printf("[ EXHAUSTIVE ] %s seed %llu: %s\n", test.c_str(),
              static_cast<unsigned long long>(base.seed), describe(result, options).c_str());
  if (!result.failure.has_value()) return;
  const char* dir = std::getenv("TRELLIS_REPLAY_DIR");
  const std::string path = std::string(dir != nullptr && *dir ? dir : ::testing::TempDir()) + "/" +
                           test + ".seed" + std::to_string(base.seed) + ".exhaustive.replay";
  std::string written = path;
  try {
    write_replay_file(path, result.failure->replay(test));
  } catch (const std::exception& e) {
    written = std::string("(not written: ") + e.what() + ")";
  }
  ADD_FAILURE() << "exhaustive exploration failed at seed " << base.seed << ": "
                << result.failure->failure << "\n  " << describe(result, options)
                << "\n  replay file: " << written << "\n  replay with:\n    TRELLIS_REPLAY=" << path
                << " " << self_executable() << " --gtest_filter=" << filter;
}

inline void run_sim_test(const std::string& suite, const std::string& name, const SimBody& body,
                         std::uint64_t shard, std::uint64_t shards) {
  const std::string test = suite + "." + name;
  const std::string filter = shards > 1 ? test + "/shard_" + std::to_string(shard) : test;
  Config base;
  PolicySpec spec;
  try {
    spec = policy_from_environment();
  } catch (const std::invalid_argument& e) {
    FAIL() << "TRELLIS_POLICY: " << e.what();
  }
  spec.apply(base);
  // Replay mode: one run, failures reported as they happen.
  if (const char* replay_path = std::getenv("TRELLIS_REPLAY");
      replay_path != nullptr && *replay_path != '\0') {
    ReplayFile replay;
    try {
      replay = read_replay_file(replay_path);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    if (replay.scenario != test) {
      FAIL() << "replay file " << replay_path << " is for '" << replay.scenario << "', not "
             << test;
    }
    std::printf("[ REPLAY   ] %s seed %llu, %zu decisions from %s\n", test.c_str(),
                static_cast<unsigned long long>(replay.seed), replay.decisions.size(), replay_path);
    const RunResult r = run_simulation(body, replay_config(replay, base));
    if (r.failed) {
      ADD_FAILURE() << "replayed failure: " << r.failure;
    } else if (::testing::Test::HasFailure()) {
      std::printf("[ REPLAY   ] replayed failure: the assertions above\n");
    } else {
      std::printf("[ REPLAY   ] the replayed run passed: the failure did not reproduce\n");
    }
    return;
  }
  const std::uint64_t seeds = env_u64("TRELLIS_SEEDS", 100);
  const std::uint64_t first = env_u64("TRELLIS_BASE_SEED", 1);
  if (spec.exhaustive) {
    base.seed = first;
    run_sim_test_exhaustive(test, filter, body, base, spec.exhaustive_options);
    return;
  }
  if (base.policy == PolicyKind::kPct && base.pct_steps_estimate == 0) {
    Config probe_config = base;
    probe_config.seed = first;
    base.pct_steps_estimate = learn_pct_steps(body, probe_config);
  }
  std::vector<std::uint64_t> sweep;
  try {
    sweep = shard_seeds(first, seeds, shard, shards);
  } catch (const std::invalid_argument& e) {
    FAIL() << e.what();
  }
  for (std::uint64_t seed : sweep) {
    Config config = base;
    config.seed = seed;
    const RunResult r = run_captured(body, config);
    if (r.failed) {
      ShrinkResult minimal;
      {
        ::testing::TestPartResultArray captured;
        ::testing::ScopedFakeTestPartResultReporter reporter(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
        minimal = shrink(body, r, [&]() -> std::optional<std::string> {
          for (int k = 0; k < captured.size(); ++k) {
            if (captured.GetTestPartResult(k).failed()) return std::string("assertion failed");
          }
          return std::nullopt;
        });
      }
      const char* dir = std::getenv("TRELLIS_REPLAY_DIR");
      // (TempDir() ends with a slash; a directory from the environment may not.)
      std::string path = dir != nullptr && *dir ? dir : ::testing::TempDir();
      if (!path.empty() && path.back() != '/') path += '/';
      path += test + ".seed" + std::to_string(seed) + ".replay";
      std::string written = path;
      try {
        write_replay_file(path, minimal.run.replay(test));
      } catch (const std::exception& e) {
        written = std::string("(not written: ") + e.what() + ")";
      }
      ADD_FAILURE() << "simulation failed at seed " << seed << " (policy " << policy_label(config)
                    << "): " << r.failure << "\n  schedule shrunk from " << minimal.decisions_before
                    << " to " << minimal.run.decisions.size() << " decisions ("
                    << minimal.non_default_after() << " non-default decisions) and "
                    << minimal.faults_after() << " faults in " << minimal.runs
                    << " reruns\n  faults: " << minimal.run.fault_summary()
                    << "\n  replay file: " << written
                    << "\n  replay with:\n    TRELLIS_REPLAY=" << path << " " << self_executable()
                    << " --gtest_filter=" << filter;
      return;
    }
    if (seed % 20 == 0) {
      std::optional<std::string> divergence;
      {
        ::testing::TestPartResultArray captured;
        ::testing::ScopedFakeTestPartResultReporter reporter(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
        divergence = check_determinism(body, config);
      }
      if (divergence.has_value()) {
        ADD_FAILURE() << *divergence;
        return;
      }
    }
  }
}

class SimTest : public ::testing::Test {
 public:
  SimTest(std::string suite, std::string name, SimBody body, std::uint64_t shard,
          std::uint64_t shards)
      : suite_(std::move(suite)),
        name_(std::move(name)),
        body_(std::move(body)),
        shard_(shard),
        shards_(shards) {}
  void TestBody() override { run_sim_test(suite_, name_, body_, shard_, shards_); }

 private:
  std::string suite_;
  std::string name_;
  SimBody body_;
  std::uint64_t shard_;
  std::uint64_t shards_;
};

// Registers Suite.Name, or under GoogleTest sharding one test per shard
// (Suite.Name/shard_0 ...), registered consecutively so that each shard runs exactly one of
// them, which sweeps that shard's seeds.
// A sharding environment it cannot read (the shard rules of sim/shard.h: a total of 0 or over
// kShardsMax, not a number, an index without a total) registers one test that fails naming
// it, rather than guessing a shard count (or registering millions of tests).
class RefusedShardingTest : public ::testing::Test {
 public:
  explicit RefusedShardingTest(std::string why) : why_(std::move(why)) {}
  void TestBody() override { FAIL() << "TRELLIS_SIM_TEST: " << why_ << "; no seed was run"; }

 private:
  std::string why_;
};

inline bool register_sim_test(const char* suite, const char* name, const char* file, int line,
                              void (*body)(World&)) {
  std::uint64_t shards = 1;
  try {
    ShardInputs inputs = ShardInputs::from_environment("", "");
    inputs.job_index.reset();  // only GoogleTest's variables split a test binary's sweep
    inputs.trellis_total.reset();
    shards = resolve_shard(inputs).total;
  } catch (const ShardError& error) {
    ::testing::RegisterTest(suite, name, nullptr, nullptr, file, line,
                            [why = std::string(error.what())]() -> ::testing::Test* {
                              return new RefusedShardingTest(why);
                            });
    return true;
  }
  for (std::uint64_t k = 0; k < shards; ++k) {
    const std::string test_name =
        shards > 1 ? std::string(name) + "/shard_" + std::to_string(k) : std::string(name);
    ::testing::RegisterTest(
        suite, test_name.c_str(), nullptr, nullptr, file, line,
        [=]() -> ::testing::Test* { return new SimTest(suite, name, body, k, shards); });
  }
  return true;
}

// One run of an async test body under `policy`: its failure, or "" if it passed.
inline std::string async_failure(const std::function<void()>& body, SchedulePolicy& policy) {
  std::string failure;
  ::testing::TestPartResultArray captured;
  ::testing::ScopedFakeTestPartResultReporter reporter(
      ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
  try {
    run_unit_with(body, policy);
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "an exception not derived from std::exception";
  }
  if (std::optional<std::string> part = new_failures_probe(captured)(); failure.empty() && part) {
    failure = *part;
  }
  return failure;
}

// TRELLIS_REPLAY=<file> for an async test: its decisions under DecisionPolicy.
inline void run_async_replay(const std::string& test, const std::function<void()>& body,
                             const char* replay_path) {
  ReplayFile replay;
  try {
    replay = read_replay_file(replay_path);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  if (replay.scenario != test) {
    FAIL() << "replay file " << replay_path << " is for '" << replay.scenario << "', not " << test;
  }
  DecisionPolicy policy(replay.decisions);
  const std::string failure = async_failure(body, policy);
  if (!failure.empty()) {
    ADD_FAILURE() << "replayed failure: " << failure;
  } else {
    std::printf("[ REPLAY   ] the replayed run passed: the failure did not reproduce\n");
  }
}

// TRELLIS_POLICY=exhaustive[:...] for an async test.
inline void run_async_exhaustive(const std::string& test, const std::function<void()>& body,
                                 const ExhaustiveOptions& options) {
  ExhaustiveResult result;
  try {
    ::testing::TestPartResultArray captured;
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &captured);
    result = explore_exhaustively(body, options, new_failures_probe(captured));
  } catch (const std::exception& e) {
    FAIL() << "exhaustive exploration of " << test << ": " << e.what();
  }
  std::printf("[ EXHAUSTIVE ] %s: %s\n", test.c_str(), describe(result, options).c_str());
  if (!result.failure.has_value()) return;
  const char* dir = std::getenv("TRELLIS_REPLAY_DIR");
  const std::string path = std::string(dir != nullptr && *dir ? dir : ::testing::TempDir()) + "/" +
                           test + ".exhaustive.replay";
  std::string written = path;
  try {
    write_replay_file(path, result.failure->replay(test));
  } catch (const std::exception& e) {
    written = std::string("(not written: ") + e.what() + ")";
  }
  ADD_FAILURE() << "exhaustive exploration failed: " << result.failure->failure << "\n  "
                << describe(result, options) << "\n  replay file: " << written
                << "\n  replay with:\n    TRELLIS_REPLAY=" << path << " " << self_executable()
                << " --gtest_filter=" << test;
}

// The seeded policy of one async test run (random, fifo or pct).
inline std::unique_ptr<StepPolicy> async_policy(const PolicySpec& spec, std::uint64_t seed) {
  switch (spec.kind) {
    case PolicyKind::kFifo:
      return std::make_unique<FifoPolicy>();
    case PolicyKind::kPct:
      return std::make_unique<PctPolicy>(
          seed, PctOptions{.depth = spec.pct_depth, .steps_estimate = spec.pct_steps_estimate});
    default:
      return std::make_unique<RandomPolicy>(seed);
  }
}

inline void run_async_test(const std::string& suite, const std::string& name, void (*body)()) {
  const std::string test = suite + "." + name;
  PolicySpec spec;
  try {
    spec = policy_from_environment();
  } catch (const std::invalid_argument& e) {
    FAIL() << "TRELLIS_POLICY: " << e.what();
  }
  if (const char* path = std::getenv("TRELLIS_REPLAY"); path != nullptr && *path != '\0') {
    return run_async_replay(test, body, path);
  }
  if (spec.exhaustive) return run_async_exhaustive(test, body, spec.exhaustive_options);
  if (spec.kind == PolicyKind::kPct && spec.pct_steps_estimate == 0) {
    spec.pct_steps_estimate = learn_pct_steps(body);
  }
  const std::string policy_env =
      spec.kind == PolicyKind::kRandom ? "" : "TRELLIS_POLICY=" + spec.name() + " ";
  const std::uint64_t seeds = env_u64("TRELLIS_SEEDS", 20);
  const std::uint64_t first = env_u64("TRELLIS_BASE_SEED", 1);
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    const std::unique_ptr<StepPolicy> policy = async_policy(spec, seed);
    const std::string failure = async_failure(body, *policy);
    if (!failure.empty()) {
      ADD_FAILURE() << "failed at schedule seed " << seed << ": " << failure
                    << "\n  rerun exactly this schedule with:\n    TRELLIS_BASE_SEED=" << seed
                    << " TRELLIS_SEEDS=1 " << policy_env << self_executable()
                    << " --gtest_filter=" << test;
      return;
    }
  }
}

}  // namespace trellis::sim::testing

#define TRELLIS_ASYNC_TEST(suite, name)                                                 \
  static void trellis_async_test_body_##suite##_##name();                               \
  TEST(suite, name) {                                                                   \
    ::trellis::sim::testing::run_async_test(#suite, #name,                              \
                                            &trellis_async_test_body_##suite##_##name); \
  }                                                                                     \
  static void trellis_async_test_body_##suite##_##name()

#define TRELLIS_SIM_TEST(suite, name)                                                      \
  static void trellis_sim_test_body_##suite##_##name(::trellis::sim::World& world);        \
  [[maybe_unused]] static const bool trellis_sim_test_registered_##suite##_##name =        \
      ::trellis::sim::testing::register_sim_test(#suite, #name, __FILE__, __LINE__,        \
                                                 &trellis_sim_test_body_##suite##_##name); \
  static void trellis_sim_test_body_##suite##_##name(::trellis::sim::World& world)
