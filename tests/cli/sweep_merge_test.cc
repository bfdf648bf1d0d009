// `trellis sweep-merge` refuses whatever is not every shard of one sweep exactly once
// (missing, duplicate, overlapping, another sweep's shard) and whatever it did not write
// (another tool's JUnit, a truncated or edited report): exit 2 and a message that names the
// problem and the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_process.h"

namespace {

namespace fs = std::filesystem;
using trellis::cli_testing::ChildResult;
using trellis::cli_testing::read_text;
using trellis::cli_testing::run_trellis;
using trellis::cli_testing::TempDir;

constexpr int kExitUsage = 2;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "'" << from << "' is not in the report";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Reports of wal sweeps (20 seeds) in tmp: shard I of N as "wal-I-N.xml".
class SweepMergeErrors : public ::testing::Test {
 protected:
  std::string report(std::uint64_t index, std::uint64_t total, const std::string& options = "") {
    const std::string path =
        tmp_ / ("wal-" + std::to_string(index) + "-" + std::to_string(total) + options + ".xml");
    if (fs::exists(path)) return path;
    std::vector<std::string> args = {
        "sweep",           "wal",
        "--seeds=20",      "--shard=" + std::to_string(index) + "/" + std::to_string(total),
        "--junit=" + path, "--replay_dir=" + tmp_.path().string()};
    if (!options.empty()) args.push_back("--options=" + options);
    const ChildResult r = run_trellis(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return path;
  }

  // Merging `reports` fails with exit 2 and a message containing `message`.
  void expect_refused(std::vector<std::string> reports, const std::string& message) {
    reports.insert(reports.begin(), "sweep-merge");
    const ChildResult r = run_trellis(reports);
    EXPECT_EQ(r.exit_code, kExitUsage) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << "wanted '" << message << "' in:\n"
                                                         << r.output;
  }

  // The report of shard 0/3, edited from `from` to `to`, as a new file.
  std::string edited(const std::string& from, const std::string& to) {
    const std::string path = tmp_ / ("edited" + std::to_string(++edits_) + ".xml");
    write_text(path, replaced(read_text(report(0, 3)), from, to));
    return path;
  }

  TempDir tmp_;
  int edits_ = 0;
};

TEST_F(SweepMergeErrors, TheControlMergesCleanly) {
  const ChildResult r = run_trellis({"sweep-merge", report(0, 3), report(1, 3), report(2, 3)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("20 of 20 seeds run: 0 failed"), std::string::npos) << r.output;
}

TEST_F(SweepMergeErrors, MissingDuplicateAndOverlappingShards) {
  expect_refused({report(0, 3), report(2, 3)}, "missing shards: 1 of 3 have no report (1/3)");
  expect_refused({report(0, 3), report(1, 3), report(1, 3), report(2, 3)}, "duplicate shard 1/3");
  expect_refused({report(0, 3), report(1, 3), report(2, 3), report(1, 2)},
                 "overlapping seed ranges");
  expect_refused({report(0, 1), report(0, 3)}, "overlapping seed ranges");
  expect_refused({report(0, 2), report(1, 2, "planted_bug=off")}, "a report of another sweep");
}

TEST_F(SweepMergeErrors, ReportsItDidNotWriteAreRefused) {
  const std::string gtest_xml = tmp_ / "gtest.xml";
  write_text(gtest_xml,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"1\" failures=\"0\" "
             "name=\"AllTests\">\n  <testsuite name=\"A\" tests=\"1\">\n    <testcase "
             "name=\"b\" status=\"run\" classname=\"A\" />\n  </testsuite>\n</testsuites>\n");
  expect_refused({gtest_xml}, "gtest.xml, line 2: not a trellis sweep report");
  const std::string text = read_text(report(0, 3));
  const std::string truncated = tmp_ / "truncated.xml";
  write_text(truncated, text.substr(0, text.size() / 2));
  expect_refused({truncated}, "truncated");
  expect_refused({tmp_ / "missing.xml"}, "missing.xml: cannot open it");
  expect_refused({edited("name=\"seed 4\"", "name=\"seed 5\"")},
                 "seed 5 is not one of shard 0/3's seeds");
  expect_refused({edited("name=\"seed 4\"", "name=\"seed 1\"")}, "seed 1 is out of order");
  expect_refused({edited("tests=\"7\"", "tests=\"8\"")}, "do not count its test cases");
  expect_refused({edited("value=\"true\"", "value=\"yes\"")}, "complete is neither");
  expect_refused({edited("<testcase classname=\"wal\" name=\"seed 4\"", "<!-- -->")},
                 "expected <testcase>");
  expect_refused({edited("value=\"1\"/>", "value=\"2\"/>")}, "unsupported trellis.sweep_report");
  expect_refused({edited("name=\"scenario\" value=\"wal\"", "name=\"scenario\" value=\"kv\"")},
                 "the suite's name does not match");
  expect_refused({edited("</testsuites>\n", "</testsuites>\n<x/>\n")}, "text after </testsuites>");
  expect_refused({edited("time=\"0.", "time=\"x.")}, "a time is not");
  expect_refused({edited("name=\"seeds\" value=\"20\"", "name=\"seeds\" value=\"0\"")},
                 "a sweep of 0 seeds");
  expect_refused({edited("name=\"shard\" value=\"0/3\"", "name=\"shard\" value=\"0/4\"")},
                 "the suite's name does not match");
  expect_refused({edited("name=\"base_seed\" value=\"1\"",
                         "name=\"base_seed\" value=\"18446744073709551615\"")},
                 "go past the largest seed");
  expect_refused(
      {edited("value=\"\"/>\n    </properties>", "value=\"a\x01\"/>\n    </properties>")},
      "a character a report never holds");
  const ChildResult none = run_trellis({"sweep-merge"});
  EXPECT_EQ(none.exit_code, kExitUsage) << none.output;
  EXPECT_NE(none.output.find("needs the shards' reports"), std::string::npos) << none.output;
}

}  // namespace
