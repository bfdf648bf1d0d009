// The partition behind `trellis sweep --shard` (sim/trellis/sim/shard.h) and the report
// format behind `sweep-merge` (sim/trellis/sim/sweep_report.h), in process: for any seed
// count and any number of shards the shards are disjoint, cover the seeds and differ in size by
// at most one; a report reads back as itself; merging in memory finds the first failure.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "trellis/sim/harness.h"
#include "trellis/sim/shard.h"
#include "trellis/sim/sweep_report.h"

namespace {

using trellis::sim::SeedSlice;
using trellis::sim::Shard;
using trellis::sim::ShardError;
using trellis::sim::ShardInputs;
using trellis::sim::SweepReport;

RC_GTEST_PROP(ShardPartition, ShardsAreDisjointCoverTheSeedsAndBalance, ()) {
  const auto count = *rc::gen::inRange<std::uint64_t>(0, 3000);
  // Sometimes more shards than seeds: the shards past the last seed get none.
  const auto total = *rc::gen::inRange<std::uint64_t>(1, 80);
  // Seeds near the top of the range too: no overflow.
  const auto base = *rc::gen::oneOf(
      rc::gen::inRange<std::uint64_t>(0, 1000),
      rc::gen::just(std::numeric_limits<std::uint64_t>::max() - (count == 0 ? 0 : count - 1)));
  const SeedSlice all = SeedSlice::range(base, count);
  std::set<std::uint64_t> seen;
  std::uint64_t smallest = count;
  std::uint64_t largest = 0;
  for (std::uint64_t k = 0; k < total; ++k) {
    const SeedSlice shard = all.shard(k, total);
    smallest = std::min(smallest, shard.count);
    largest = std::max(largest, shard.count);
    for (std::uint64_t i = 0; i < shard.count; ++i) {
      const std::uint64_t seed = shard.at(i);
      RC_ASSERT(seen.insert(seed).second);  // disjoint
      RC_ASSERT(all.contains(seed));
      RC_ASSERT(shard.contains(seed));
      RC_ASSERT((seed - base) % total == k);  // the documented rule: i = k (mod N)
    }
    if (count < 2000) {  // the harness's shard_seeds is the same partition
      const std::vector<std::uint64_t> same = trellis::sim::shard_seeds(base, count, k, total);
      RC_ASSERT(same.size() == shard.count);
      for (std::uint64_t i = 0; i < shard.count; ++i) RC_ASSERT(same[i] == shard.at(i));
    }
  }
  RC_ASSERT(seen.size() == count);  // and together they cover every seed
  RC_ASSERT(largest - smallest <= 1);
}

RC_GTEST_PROP(ShardPartition, ContainsIsMembership, ()) {
  const auto count = *rc::gen::inRange<std::uint64_t>(0, 200);
  const auto total = *rc::gen::inRange<std::uint64_t>(1, 20);
  const auto index = *rc::gen::inRange<std::uint64_t>(0, total);
  const SeedSlice shard = SeedSlice::range(10, count).shard(index, total);
  std::set<std::uint64_t> members;
  for (std::uint64_t i = 0; i < shard.count; ++i) members.insert(shard.at(i));
  for (std::uint64_t seed = 0; seed < 10 + count + 30; ++seed) {
    RC_ASSERT(shard.contains(seed) == (members.count(seed) != 0));
  }
}

TEST(ShardPartition, OutOfRangeShardsAndOverflowingRangesThrow) {
  EXPECT_THROW(SeedSlice::range(1, 10).shard(3, 3), ShardError);
  EXPECT_THROW(SeedSlice::range(1, 10).shard(0, 0), ShardError);
  EXPECT_THROW(SeedSlice::range(std::numeric_limits<std::uint64_t>::max(), 2), ShardError);
  EXPECT_NO_THROW(SeedSlice::range(std::numeric_limits<std::uint64_t>::max(), 1));
  EXPECT_EQ(SeedSlice::range(1, 10).shard(2, 3), (SeedSlice{3, 3, 3}));
}

ShardInputs inputs(std::optional<std::string> flag, std::optional<std::string> shards = {}) {
  ShardInputs in;
  in.shard_flag = std::move(flag);
  in.shards_flag = std::move(shards);
  return in;
}

TEST(ShardPartition, ResolveFollowsTheDocumentedPrecedence) {
  EXPECT_EQ(resolve_shard(ShardInputs{}), (Shard{0, 1}));
  EXPECT_EQ(resolve_shard(inputs("2/5")), (Shard{2, 5}));
  ShardInputs gtest = inputs({});
  gtest.gtest_index = "1";
  gtest.gtest_total = "4";
  EXPECT_EQ(resolve_shard(gtest), (Shard{1, 4}));
  gtest.job_index = "7";  // disagrees with GTEST_*: refused, whichever would win
  gtest.trellis_total = "9";
  EXPECT_THROW(resolve_shard(gtest), ShardError);
  gtest.shard_flag = "0/2";  // but an explicit --shard overrides the environment
  EXPECT_EQ(resolve_shard(gtest), (Shard{0, 2}));
  ShardInputs job;
  job.job_index = "3";
  EXPECT_THROW(resolve_shard(job), ShardError);  // index without a total
  job.trellis_total = "4";
  EXPECT_EQ(resolve_shard(job), (Shard{3, 4}));
  job.shards_flag = "5";
  EXPECT_THROW(resolve_shard(job), ShardError);  // --shards contradicts TRELLIS_SHARDS
  for (const char* bad : {"", "1", "/", "1/", "/3", "3/3", "0/0", "+1/3", "1/+3", "0x1/3", "1/3 ",
                          "18446744073709551616/3", "1/1048577"}) {
    if (*bad == '\0') continue;  // "" is "not given"
    EXPECT_THROW(resolve_shard(inputs(bad)), ShardError) << bad;
  }
}

SweepReport sample_report() {
  SweepReport r;
  r.scenario = "kv";
  r.options = "planted_bug=on";
  r.policy = "pct:depth=3";
  r.base_seed = 5;
  r.seeds = 10;
  r.shard = Shard{1, 3};  // seeds 6, 9, 12
  r.complete = true;
  r.micros = 1'500'000;
  r.replay = "out dir/kv.seed9.replay";
  r.cases = {{6, 12, false, ""},
             {9, 3'000'001, true, "a \"quoted\" <failure> & more"},
             {12, 0, true, "again"}};
  return r;
}

TEST(SweepReport, ReadsBackAsItself) {
  const SweepReport r = sample_report();
  const std::string xml = trellis::sim::format_sweep_report(r);
  EXPECT_EQ(trellis::sim::parse_sweep_report(xml), r) << xml;
  EXPECT_NE(xml.find("<testsuite name=\"trellis sweep kv shard 1/3\" tests=\"3\" failures=\"2\" "
                     "time=\"1.500000\">"),
            std::string::npos)
      << xml;
  SweepReport incomplete = r;
  incomplete.complete = false;
  incomplete.cases.pop_back();
  EXPECT_EQ(trellis::sim::parse_sweep_report(trellis::sim::format_sweep_report(incomplete)),
            incomplete);
  // What a report must not hold is refused by the writer, not written.
  SweepReport bad = r;
  bad.scenario = "two words";
  EXPECT_THROW(trellis::sim::format_sweep_report(bad), std::invalid_argument);
  bad = r;
  bad.cases[1].message = "line\nbreak";
  EXPECT_THROW(trellis::sim::format_sweep_report(bad), std::invalid_argument);
  for (auto breaks : std::vector<std::function<void(SweepReport&)>>{
           [](SweepReport& x) { x.cases[2].seed = 13; },               // not in shard 1/3
           [](SweepReport& x) { std::swap(x.cases[0], x.cases[1]); },  // out of order
           [](SweepReport& x) { x.cases.pop_back(); },                 // "complete" but short
           [](SweepReport& x) { x.seeds = 0; },
           [](SweepReport& x) {
             x.shard = Shard{3, 3};
           },
           [](SweepReport& x) {  // a replay file without a failure
             for (auto& c : x.cases) c = {c.seed, c.micros, false, ""};
           }}) {
    bad = r;
    breaks(bad);
    EXPECT_THROW(trellis::sim::format_sweep_report(bad), std::invalid_argument);
  }
  EXPECT_EQ(trellis::sim::sweep_report_text("a\nb\x01\xff"), "a b ?");
}

TEST(SweepReport, MergeFindsTheSmallestFailingSeedOverTheShards) {
  std::vector<SweepReport> shards(3, sample_report());
  for (std::uint64_t k = 0; k < 3; ++k) {
    shards[k].shard = Shard{k, 3};
    shards[k].cases.clear();
    shards[k].replay = "shard" + std::to_string(k) + ".replay";
    const SeedSlice seeds = shards[k].slice();
    for (std::uint64_t i = 0; i < seeds.count; ++i) {
      const bool failed = seeds.at(i) == 9 || seeds.at(i) == 7 || seeds.at(i) == 14;
      shards[k].cases.push_back({seeds.at(i), 1, failed, failed ? "x" : ""});
    }
  }
  const trellis::sim::SweepMerge m =
      trellis::sim::merge_sweep_reports(shards, {"a.xml", "b.xml", "c.xml"});
  EXPECT_EQ(m.run, 10u);
  EXPECT_EQ(m.failed, 3u);
  ASSERT_TRUE(m.first_failure.has_value());
  EXPECT_EQ(*m.first_failure, 7u);  // seed 7 is in shard 2/3 (5 + 2)
  EXPECT_EQ(m.first_failure_shard, (Shard{2, 3}));
  EXPECT_EQ(m.first_failure_report, 2u);
  EXPECT_EQ(m.replay, "shard2.replay");
  EXPECT_TRUE(m.incomplete.empty());
}

}  // namespace
