// `trellis sweep --shard` and `trellis sweep-merge`, end to end: N shard processes of a real
// scenario partition the seeds exactly, and merging their reports gives what one unsharded
// sweep gives (counts, first failing seed, that seed's replay file byte for byte). Then the
// environment's ways to name a shard, and every bad input: exit 2, a clear message, and never
// a silent full sweep.
// GCC 12 at -O1 under ASan warns that std::regex's internal std::function "may be used
// uninitialized" (a false positive in libstdc++'s regex compiler, as in tests/tidy/), which
// -Werror turns into a failed sanitizer build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli_process.h"

namespace {

namespace fs = std::filesystem;
using trellis::cli_testing::ChildResult;
using trellis::cli_testing::read_text;
using trellis::cli_testing::run_trellis;
using trellis::cli_testing::TempDir;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// The seeds a report's test cases name, read with a regex (not with the parser under test).
std::vector<std::uint64_t> seeds_in_report(const std::string& path) {
  const std::string xml = read_text(path);
  static const std::regex seed_case(R"re(<testcase classname="[^"]*" name="seed (\d+)")re");
  std::vector<std::uint64_t> seeds;
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), seed_case);
       it != std::sregex_iterator(); ++it) {
    seeds.push_back(std::stoull((*it)[1].str()));
  }
  return seeds;
}

// What `trellis sweep-merge` printed, in parts.
struct MergeSummary {
  int exit_code = -1;
  std::string counts;      // "40 of 40 seeds run: 2 failed"
  std::string first_seed;  // "15", or "" without a failure
  std::string replay;      // the first failure's replay file, or ""
  std::string output;
};

std::string first_match(const std::string& text, const std::regex& pattern) {
  std::smatch match;
  return std::regex_search(text, match, pattern) ? match[1].str() : std::string();
}

MergeSummary merge(std::vector<std::string> reports) {
  reports.insert(reports.begin(), "sweep-merge");
  const ChildResult r = run_trellis(reports);
  MergeSummary s;
  s.exit_code = r.exit_code;
  s.output = r.output;
  s.counts = first_match(r.output, std::regex(R"((\d+ of \d+ seeds run: \d+ failed))"));
  s.first_seed = first_match(r.output, std::regex(R"(first failing seed: (\d+))"));
  s.replay = first_match(r.output, std::regex(R"(replay file: (\S+))"));
  return s;
}

struct Sweep {
  std::string scenario;
  std::uint64_t seeds;
  std::vector<std::string> flags;  // beyond --seeds, --shard, --junit and --replay_dir
};

// Runs `sweep` as one shard (shard "" = unsharded) into `dir`; returns its report's path.
std::string run_shard(const Sweep& sweep, const std::string& shard, const fs::path& dir) {
  fs::create_directories(dir);
  std::vector<std::string> args = {
      "sweep", sweep.scenario, "--seeds=" + std::to_string(sweep.seeds),
      "--junit=" + (dir / "report.xml").string(), "--replay_dir=" + dir.string()};
  if (!shard.empty()) args.push_back("--shard=" + shard);
  args.insert(args.end(), sweep.flags.begin(), sweep.flags.end());
  const ChildResult r = run_trellis(args);
  EXPECT_TRUE(r.exit_code == kExitPassed || r.exit_code == kExitFailed)
      << "shard " << shard << " exit " << r.exit_code << ":\n"
      << r.output;
  return (dir / "report.xml").string();
}

// Shards 0..N-1 of `sweep` partition its seeds exactly and merge into `whole`.
void check_shards_merge_to(const Sweep& sweep, std::uint64_t shards, const MergeSummary& whole,
                           const TempDir& tmp) {
  std::vector<std::string> reports;
  std::set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < shards; ++i) {
    const std::string shard = std::to_string(i) + "/" + std::to_string(shards);
    reports.push_back(run_shard(
        sweep, shard, tmp.path() / ("n" + std::to_string(shards)) / ("shard" + std::to_string(i))));
    for (std::uint64_t seed : seeds_in_report(reports.back())) {
      EXPECT_EQ((seed - 1) % shards, i) << "seed " << seed << " ran in shard " << shard;
      EXPECT_TRUE(seen.insert(seed).second) << "seed " << seed << " ran twice";
    }
  }
  std::set<std::uint64_t> every;
  for (std::uint64_t seed = 1; seed <= sweep.seeds; ++seed) every.insert(seed);
  EXPECT_EQ(seen, every) << "the shards of " << shards << " do not cover seeds 1.." << sweep.seeds;
  const MergeSummary merged = merge(reports);
  EXPECT_EQ(merged.exit_code, whole.exit_code) << merged.output;
  EXPECT_EQ(merged.counts, whole.counts) << merged.output;
  EXPECT_EQ(merged.first_seed, whole.first_seed) << merged.output;
  if (!whole.replay.empty()) {
    ASSERT_FALSE(merged.replay.empty()) << merged.output;
    EXPECT_NE(merged.replay, whole.replay);  // each shard wrote its own
    EXPECT_EQ(read_text(merged.replay), read_text(whole.replay)) << merged.replay;
  }
}

TEST(ShardedSweep, KvWithThePlantedBugMergesToTheUnshardedSweep) {
  const TempDir tmp;
  const Sweep sweep{"kv", 40, {"--keep_going", "--options=planted_bug=on", "--shrink_runs=30"}};
  const MergeSummary whole = merge({run_shard(sweep, "", tmp.path() / "whole")});
  ASSERT_EQ(whole.exit_code, kExitFailed) << whole.output;
  ASSERT_EQ(whole.counts, "40 of 40 seeds run: 2 failed") << whole.output;
  ASSERT_FALSE(whole.first_seed.empty()) << whole.output;
  ASSERT_TRUE(fs::exists(whole.replay)) << whole.output;
  for (std::uint64_t shards : {1, 2, 3, 7}) {
    SCOPED_TRACE("shards " + std::to_string(shards));
    check_shards_merge_to(sweep, shards, whole, tmp);
  }
}

TEST(ShardedSweep, CleanSweepsMergeToTheUnshardedSweep) {
  const TempDir tmp;
  for (const Sweep& sweep : {Sweep{"wal", 200, {}}, Sweep{"kv", 12, {}}, Sweep{"wal", 5, {}}}) {
    SCOPED_TRACE(sweep.scenario + " " + std::to_string(sweep.seeds) + " seeds");
    const fs::path dir = tmp.path() / (sweep.scenario + std::to_string(sweep.seeds));
    const MergeSummary whole = merge({run_shard(sweep, "", dir / "whole")});
    ASSERT_EQ(whole.exit_code, kExitPassed) << whole.output;
    ASSERT_EQ(whole.counts, std::to_string(sweep.seeds) + " of " + std::to_string(sweep.seeds) +
                                " seeds run: 0 failed");
    EXPECT_EQ(whole.first_seed, "");
    const TempDir shards_dir;
    for (std::uint64_t shards : {1, 2, 3, 7}) {  // 7 > 5 seeds: two shards get none
      SCOPED_TRACE("shards " + std::to_string(shards));
      check_shards_merge_to(sweep, shards, whole, shards_dir);
    }
  }
}

// Without --keep_going a shard stops at its first failure: the merge says which shard did not
// finish and still names the first failing seed it saw.
TEST(ShardedSweep, AShardStoppedByAFailureIsReportedIncomplete) {
  const TempDir tmp;
  const Sweep sweep{"kv", 40, {"--options=planted_bug=on", "--shrink_runs=10"}};
  std::vector<std::string> reports;
  for (int i = 0; i < 2; ++i) {
    reports.push_back(run_shard(sweep, std::to_string(i) + "/2", tmp.path() / std::to_string(i)));
  }
  const MergeSummary merged = merge(reports);
  EXPECT_EQ(merged.exit_code, kExitFailed) << merged.output;
  EXPECT_NE(merged.output.find("did not run all its seeds"), std::string::npos) << merged.output;
  EXPECT_FALSE(merged.first_seed.empty()) << merged.output;
}

// A property of a report, read with a regex.
std::string report_property(const std::string& path, const std::string& name) {
  return first_match(read_text(path),
                     std::regex("<property name=\"" + name + "\" value=\"([^\"]*)\"/>"));
}

// Every shard runs the unsharded sweep's policy: PCT learns its steps estimate from the
// sweep's first seed, not from each shard's.
TEST(ShardedSweep, PctShardsRunTheUnshardedSweepsPolicy) {
  const TempDir tmp;
  const Sweep sweep{"kv", 6, {"--policy=pct"}};
  const std::string whole = report_property(run_shard(sweep, "", tmp.path() / "whole"), "policy");
  EXPECT_EQ(whole.rfind("pct:depth=3,steps=", 0), 0u) << whole;
  std::vector<std::string> reports;
  for (int i = 0; i < 2; ++i) {
    reports.push_back(run_shard(sweep, std::to_string(i) + "/2", tmp.path() / std::to_string(i)));
    EXPECT_EQ(report_property(reports.back(), "policy"), whole) << "shard " << i;
  }
  const MergeSummary merged = merge(reports);
  EXPECT_EQ(merged.exit_code, kExitPassed) << merged.output;
  EXPECT_NE(merged.output.find("policy " + whole), std::string::npos) << merged.output;
}

// The shard a sweep ran, from its report: "I/N".
std::string report_shard(const std::string& path) {
  return first_match(read_text(path),
                     std::regex(R"re(<property name="shard" value="([^"]*)"/>)re"));
}

struct EnvCase {
  std::map<std::string, std::string> env;
  std::vector<std::string> flags;
  std::string shard;  // what the sweep must sweep
};

TEST(ShardedSweep, TheEnvironmentNamesTheShard) {
  const std::vector<EnvCase> cases = {
      {{{"GTEST_SHARD_INDEX", "2"}, {"GTEST_TOTAL_SHARDS", "3"}}, {}, "2/3"},
      {{{"JOB_COMPLETION_INDEX", "1"}, {"TRELLIS_SHARDS", "4"}}, {}, "1/4"},
      {{{"JOB_COMPLETION_INDEX", "3"}}, {"--shards=5"}, "3/5"},
      {{{"JOB_COMPLETION_INDEX", "3"}, {"TRELLIS_SHARDS", "5"}}, {"--shards=5"}, "3/5"},
      // An explicit --shard beats the environment (rerunning one CI shard locally).
      {{{"GTEST_SHARD_INDEX", "0"}, {"GTEST_TOTAL_SHARDS", "2"}}, {"--shard=1/3"}, "1/3"},
      {{{"JOB_COMPLETION_INDEX", "9"}}, {"--shard=0/2"}, "0/2"},
      // Both schemes naming the same shard agree; empty variables count as unset.
      {{{"GTEST_SHARD_INDEX", "1"},
        {"GTEST_TOTAL_SHARDS", "2"},
        {"JOB_COMPLETION_INDEX", "1"},
        {"TRELLIS_SHARDS", "2"}},
       {},
       "1/2"},
      {{{"GTEST_SHARD_INDEX", ""}, {"JOB_COMPLETION_INDEX", ""}}, {}, "0/1"},
  };
  const TempDir tmp;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const std::string report = tmp / ("report" + std::to_string(k) + ".xml");
    std::vector<std::string> args = {"sweep", "wal", "--seeds=20", "--junit=" + report};
    args.insert(args.end(), cases[k].flags.begin(), cases[k].flags.end());
    const ChildResult r = run_trellis(args, cases[k].env);
    ASSERT_EQ(r.exit_code, kExitPassed) << "case " << k << ":\n" << r.output;
    EXPECT_EQ(report_shard(report), cases[k].shard) << "case " << k;
    const std::uint64_t index = std::stoull(cases[k].shard);
    const std::uint64_t total = std::stoull(cases[k].shard.substr(cases[k].shard.find('/') + 1));
    for (std::uint64_t seed : seeds_in_report(report)) EXPECT_EQ((seed - 1) % total, index);
    EXPECT_EQ(seeds_in_report(report).size(), (20 - index + total - 1) / total) << "case " << k;
  }
}

struct BadShard {
  std::map<std::string, std::string> env;
  std::vector<std::string> flags;
  std::string message;  // part of the error
};

TEST(ShardedSweep, BadShardSettingsAreUsageErrorsNeverAFullSweep) {
  const std::vector<BadShard> cases = {
      {{}, {"--shard=3/3"}, "shard index 3 is not below the number of shards 3"},
      {{}, {"--shard=0/0"}, "the number of shards must be 1.."},
      {{}, {"--shard=x/3"}, "'x' is not a decimal number"},
      {{}, {"--shard=-1/3"}, "'-1' is not a decimal number"},
      {{}, {"--shard=1"}, "expected I/N"},
      {{}, {"--shard=1/3/4"}, "'3/4' is not a decimal number"},
      {{}, {"--shard= 1/3"}, "is not a decimal number"},
      {{}, {"--shard=1/3", "--shards=4"}, "--shards=4 contradicts shard 1/3"},
      {{}, {"--shards=3"}, "--shards=3 without a shard index"},
      {{}, {"--shards=0", "--shard=0/1"}, "the number of shards must be 1.."},
      {{{"JOB_COMPLETION_INDEX", "1"}}, {}, "JOB_COMPLETION_INDEX is set but the number of shards"},
      {{{"JOB_COMPLETION_INDEX", "1"}, {"TRELLIS_SHARDS", "0"}}, {}, "TRELLIS_SHARDS: the number"},
      {{{"JOB_COMPLETION_INDEX", "abc"}, {"TRELLIS_SHARDS", "3"}}, {}, "not a decimal number"},
      {{{"JOB_COMPLETION_INDEX", "3"}, {"TRELLIS_SHARDS", "3"}}, {}, "not below the number"},
      {{{"JOB_COMPLETION_INDEX", "1"}, {"TRELLIS_SHARDS", "4"}}, {"--shards=3"}, "contradicts"},
      {{{"TRELLIS_SHARDS", "3"}}, {}, "TRELLIS_SHARDS is set but no shard index is"},
      {{{"GTEST_SHARD_INDEX", "1"}}, {}, "GTEST_SHARD_INDEX is set but GTEST_TOTAL_SHARDS is not"},
      {{{"GTEST_TOTAL_SHARDS", "2"}}, {}, "GTEST_TOTAL_SHARDS is set but GTEST_SHARD_INDEX is not"},
      {{{"GTEST_SHARD_INDEX", "5"}, {"GTEST_TOTAL_SHARDS", "3"}}, {}, "not below the number"},
      {{{"GTEST_SHARD_INDEX", "0"}, {"GTEST_TOTAL_SHARDS", "2"}}, {"--shards=3"}, "contradicts"},
      {{{"GTEST_SHARD_INDEX", "0"},
        {"GTEST_TOTAL_SHARDS", "2"},
        {"JOB_COMPLETION_INDEX", "1"},
        {"TRELLIS_SHARDS", "2"}},
       {},
       "name shard 0/2 but JOB_COMPLETION_INDEX names shard 1/2"},
      {{}, {"--shard=0/2000000"}, "the number of shards must be 1..1048576"},
  };
  const TempDir tmp;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const std::string report = tmp / ("report" + std::to_string(k) + ".xml");
    std::vector<std::string> args = {"sweep", "wal", "--seeds=20", "--junit=" + report};
    args.insert(args.end(), cases[k].flags.begin(), cases[k].flags.end());
    const ChildResult r = run_trellis(args, cases[k].env);
    EXPECT_EQ(r.exit_code, kExitUsage) << "case " << k << ":\n" << r.output;
    EXPECT_NE(r.output.find(cases[k].message), std::string::npos)
        << "case " << k << " wants '" << cases[k].message << "':\n"
        << r.output;
    EXPECT_EQ(r.output.find("seeds in"), std::string::npos) << "case " << k << " swept:\n"
                                                            << r.output;
    EXPECT_FALSE(fs::exists(report)) << "case " << k << " wrote a report";
  }
}

}  // namespace
