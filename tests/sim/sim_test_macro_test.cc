// TRELLIS_SIM_TEST itself: a correct program passes its sweep; a program with a planted race
// fails, and the failure it reports replays (the canary: a harness that cannot fail is no
// harness). Seeds, sharding and replay files are exercised through the environment
// variables the macro reads, in child processes of this test binary.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "child_process.h"
#include "trellis/sim.h"
#include "trellis/sim/gtest.h"

namespace {

using namespace std::chrono_literals;
using trellis::sim::Host;
using trellis::sim::World;
using trellis::sim::testing::run_child;

// A correct counter: increments under no race (no checkpoint between read and write).
TRELLIS_SIM_TEST(SimMacro, CorrectProgramPasses) {
  Host& h = world.add_host("h", "10.0.0.1");
  int counter = 0;
  h.start([&] {
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int t = 0; t < 4; ++t) {
        n.start_soon([&] {
          for (int i = 0; i < 5; ++i) {
            ++counter;
            trellis::checkpoint();
          }
        });
      }
    });
  });
  world.run([&] { trellis::sleep(1s); });
  EXPECT_EQ(counter, 20);
}

// A lost update across a checkpoint: read, checkpoint, write. Some schedules lose updates.
// Only run as a child (it is meant to fail).
TRELLIS_SIM_TEST(SimMacroCanary, LostUpdateIsFound) {
  if (std::getenv("TRELLIS_CANARY") == nullptr) GTEST_SKIP() << "runs as a child of SimMacro tests";
  Host& h = world.add_host("h", "10.0.0.1");
  int counter = 0;
  h.start([&] {
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int t = 0; t < 2; ++t) {
        n.start_soon([&] {
          const int read = counter;
          trellis::checkpoint();
          counter = read + 1;
        });
      }
    });
  });
  world.run([&] { trellis::sleep(1s); });
  EXPECT_EQ(counter, 2) << "lost update";
}

// TRELLIS_ASYNC_TEST: no world, a MockClock that autojumps, a seeded schedule per run.
TRELLIS_ASYNC_TEST(AsyncMacro, HoursOfTimeoutsTakeNoTime) {
  const trellis::Time start = trellis::current_time();
  bool timed_out = false;
  trellis::CancelScope scope(start + 2h);
  scope.run([&] { trellis::sleep_forever(); });
  timed_out = scope.cancelled_caught();
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(trellis::current_time() - start, 2h);
}

// A lost update between two tasks: some schedules (seeds) lose it. Only run as a child.
TRELLIS_ASYNC_TEST(AsyncMacroCanary, LostUpdateIsFound) {
  if (std::getenv("TRELLIS_CANARY") == nullptr) return;
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
  EXPECT_EQ(counter, 2) << "lost update";
}

TEST(SimMacro, CanaryFailsShrinksAndReplays) {
  const std::string dir = ::testing::TempDir();
  int status = 0;
  const std::string out = run_child("TRELLIS_CANARY=1 TRELLIS_SEEDS=200 TRELLIS_REPLAY_DIR=" + dir,
                                    "SimMacroCanary.LostUpdateIsFound", &status);
  ASSERT_NE(status, 0) << out;
  EXPECT_NE(out.find("simulation failed at seed"), std::string::npos) << out;
  EXPECT_NE(out.find("lost update"), std::string::npos) << out;
  // The one command line printed: TRELLIS_REPLAY=<file> <binary> --gtest_filter=<test>.
  const std::size_t at = out.find("TRELLIS_REPLAY=");
  ASSERT_NE(at, std::string::npos) << out;
  const std::size_t file_end = out.find(' ', at);
  const std::string file = out.substr(at + 15, file_end - (at + 15));
  const std::size_t filter_at = out.find("--gtest_filter=", file_end);
  ASSERT_NE(filter_at, std::string::npos) << out;
  const std::size_t filter_end = out.find_first_of(" \n", filter_at);
  const std::string filter = out.substr(filter_at + 15, filter_end - (filter_at + 15));
  EXPECT_EQ(filter, "SimMacroCanary.LostUpdateIsFound");
  EXPECT_EQ(file.find("//"), std::string::npos) << "a doubled slash in " << file;
  // The printed command replays the failure (twice: it is deterministic).
  for (int i = 0; i < 2; ++i) {
    const std::string replay =
        run_child("TRELLIS_CANARY=1 TRELLIS_REPLAY=" + file, filter, &status);
    EXPECT_NE(status, 0) << replay;
    EXPECT_NE(replay.find("replayed failure"), std::string::npos) << replay;
  }
  // A corrupt replay file is a clear error, not a crash.
  const std::string bad = dir + "/corrupt.replay";
  FILE* f = std::fopen(bad.c_str(), "w");
  std::fputs("trellis-replay 1\nseed banana\n", f);
  std::fclose(f);
  const std::string corrupt = run_child("TRELLIS_CANARY=1 TRELLIS_REPLAY=" + bad,
                                        "SimMacroCanary.LostUpdateIsFound", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(corrupt.find("line 2: seed must be an unsigned 64-bit integer"), std::string::npos)
      << corrupt;
}

TEST(AsyncMacro, CanaryFailsWithTheCommandThatRerunsItsSeed) {
  int status = 0;
  const std::string out =
      run_child("TRELLIS_CANARY=1 TRELLIS_SEEDS=50", "AsyncMacroCanary.LostUpdateIsFound", &status);
  ASSERT_NE(status, 0) << out;
  EXPECT_NE(out.find("lost update"), std::string::npos) << out;
  const std::size_t at = out.find("TRELLIS_BASE_SEED=");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string seed = out.substr(at + 18, out.find(' ', at) - (at + 18));
  // The printed seed fails alone, every time.
  for (int i = 0; i < 2; ++i) {
    const std::string again =
        run_child("TRELLIS_CANARY=1 TRELLIS_SEEDS=1 TRELLIS_BASE_SEED=" + seed,
                  "AsyncMacroCanary.LostUpdateIsFound", &status);
    EXPECT_NE(status, 0) << again;
    EXPECT_NE(again.find("failed at schedule seed " + seed), std::string::npos) << again;
  }
}

TEST(SimMacro, ShardsSplitTheSweep) {
  int status = 0;
  const std::string list =
      run_child("GTEST_TOTAL_SHARDS=3 GTEST_SHARD_INDEX=0", "SimMacro.Correct*", &status);
  EXPECT_EQ(status, 0) << list;
  // Each shard runs exactly one of the three registered shard tests.
  int ran = 0;
  for (int k = 0; k < 3; ++k) {
    const std::string out = run_child("GTEST_TOTAL_SHARDS=3 GTEST_SHARD_INDEX=" + std::to_string(k),
                                      "SimMacro.Correct*", &status);
    EXPECT_EQ(status, 0) << out;
    if (out.find("[       OK ] SimMacro.CorrectProgramPasses/shard_") != std::string::npos) ++ran;
  }
  EXPECT_EQ(ran, 3);
  const std::vector<std::uint64_t> a = trellis::sim::shard_seeds(1, 10, 0, 3);
  EXPECT_EQ(a, (std::vector<std::uint64_t>{1, 4, 7, 10}));
  EXPECT_EQ(trellis::sim::shard_seeds(1, 10, 2, 3), (std::vector<std::uint64_t>{3, 6, 9}));
  EXPECT_THROW(trellis::sim::shard_seeds(1, 10, 3, 3), std::invalid_argument);
}

TEST(SimMacro, ShardingItCannotReadIsAFailureNotAGuess) {
  // One shard more than kShardsMax: GoogleTest accepts the number, the shard rules do not. The
  // macro used to read it loosely (and registered a million tests); now the test fails and
  // says why, running no seed.
  int status = 0;
  const std::string total = std::to_string(trellis::sim::kShardsMax + 1);
  const std::string out = run_child("GTEST_TOTAL_SHARDS=" + total + " GTEST_SHARD_INDEX=0",
                                    "SimMacro.CorrectProgramPasses", &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("TRELLIS_SIM_TEST: "), std::string::npos) << out;
  EXPECT_NE(out.find("no seed was run"), std::string::npos) << out;
  EXPECT_EQ(out.find("/shard_"), std::string::npos) << out;
}

}  // namespace
