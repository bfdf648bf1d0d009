// Replay files: round trip, clear errors naming the line for every kind of damage, and a
// fuzzing property: no mutation of a valid file crashes the parser (it parses, or throws
// ReplayFileError).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "trellis/sim.h"
#include "trellis/sim/rapidcheck.h"

namespace trellis::sim {
namespace {

ReplayFile sample() {
  ReplayFile r;
  r.scenario = "kv_store";
  r.seed = 18446744073709551615ULL;
  r.policy = PolicyKind::kDecisions;
  r.pct_depth = 4;
  r.options = {{"planted_bug", "on"}, {"clients", "3"}};
  for (std::uint32_t i = 0; i < 100; ++i) r.decisions.push_back(i * 7919 % 13);
  return r;
}

// The sample with a fault plan: the run's faults, as a nemesis records them.
ReplayFile sample_with_faults() {
  using namespace std::chrono_literals;
  ReplayFile r = sample();
  r.fault_plan.faults = {
      {.kind = PlannedFault::Kind::kCrash, .at = 12ms, .a = 1, .duration = 40ms},
      {.kind = PlannedFault::Kind::kPartitionOneWay, .at = 60ms, .a = 3, .b = 0, .duration = 9ms},
      {.kind = PlannedFault::Kind::kSlowLink,
       .at = 70ms,
       .a = 4,
       .b = 2,
       .duration = 90ms,
       .latency = 12345us}};
  return r;
}

TEST(ReplayFile, RoundTrip) {
  const ReplayFile r = sample();
  const std::string text = format_replay_file(r);
  EXPECT_EQ(parse_replay_file(text), r);
  ReplayFile empty_decisions = r;
  empty_decisions.decisions.clear();
  EXPECT_EQ(parse_replay_file(format_replay_file(empty_decisions)), empty_decisions);
}

TEST(ReplayFile, FileRoundTripAndMissingFile) {
  const std::string path = ::testing::TempDir() + "/trellis_replay_test.replay";
  write_replay_file(path, sample());
  EXPECT_EQ(read_replay_file(path), sample());
  std::remove(path.c_str());
  try {
    read_replay_file(path);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

void expect_error(const std::string& text, std::size_t line, const std::string& fragment) {
  try {
    parse_replay_file(text);
    ADD_FAILURE() << "parsed:\n" << text;
  } catch (const ReplayFileError& e) {
    EXPECT_EQ(e.line(), line) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ReplayFile, DamageIsNamedWithItsLine) {
  const std::string head = "trellis-replay 1\nscenario s\nseed 5\npolicy random\n";
  expect_error("", 0, "empty");
  expect_error("hello\n", 1, "not a trellis replay file");
  expect_error("trellis-replay 2\n", 1, "version 2 is not supported");
  expect_error(head + "decisions 3\n1 2\n", 0, "truncated: 2 of 3 decisions");
  expect_error(head + "decisions 2\n1 2\n", 0, "no 'end' line");
  expect_error(head + "decisions 2\n1 x\nend\n", 6, "expected a decision");
  expect_error(head + "decisions 2\n1 2 3\nend\n", 6, "more decisions than the 2 announced");
  expect_error(head + "decisions 1\n99999999999\nend\n", 6, "expected a decision");
  expect_error(head + "colour blue\n", 5, "unknown key 'colour'");
  expect_error("trellis-replay 1\nseed -1\n", 2, "unsigned 64-bit");
  expect_error("trellis-replay 1\npolicy lucky\n", 2, "unknown policy 'lucky'");
  expect_error("trellis-replay 1\npct_depth 0\n", 2, "pct_depth must be");
  expect_error("trellis-replay 1\nscenario\n", 2, "takes 1 value");
  expect_error("trellis-replay 1\nseed 1\ndecisions 0\nend\n", 0, "missing 'scenario'");
  expect_error("trellis-replay 1\nscenario s\ndecisions 0\nend\n", 0, "missing 'seed'");
  expect_error(head + "end\n", 0, "missing 'decisions'");
  expect_error(head + "option a b\noption a c\n", 6, "given twice");
  expect_error(head + std::string("decisions 1\n1\0\nend\n", 18), 6, "NUL");
}

TEST(ReplayFile, CommentsAndBlankLinesAreIgnored) {
  const ReplayFile r = parse_replay_file(
      "# hi\n\ntrellis-replay 1\n  scenario   s  \n# x\nseed 3\ndecisions 3\n1\n\n2 3\nend\n");
  EXPECT_EQ(r.scenario, "s");
  EXPECT_EQ(r.seed, 3u);
  EXPECT_EQ(r.decisions, (std::vector<std::uint32_t>{1, 2, 3}));
}

// The parser refuses every name or option value the writer would refuse: '#', control
// bytes and non-ASCII bytes are errors naming the line, not values that fail later.
TEST(ReplayFile, ParserRefusesWhatTheWriterRefuses) {
  const std::string good = format_replay_file(sample());
  for (const std::string bad : {"option key va#lue",
                                "option k\x01"
                                "ey value",
                                "option key v\xc3\xa9",
                                "scenario sc\x7f"
                                "enario",
                                "scenario #x"}) {
    std::string text = good;
    const std::string kind = bad.substr(0, bad.find(' '));
    const std::size_t at = text.find(kind == "option" ? "option " : "scenario ");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, text.find('\n', at) - at, bad);
    try {
      parse_replay_file(text);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ReplayFileError& e) {
      EXPECT_NE(std::string(e.what()).find("printable ASCII"), std::string::npos) << e.what();
    }
  }
}

TEST(ReplayFile, FormatRefusesWhatItCouldNotReadBack) {
  ReplayFile r = sample();
  r.scenario = "two words";
  EXPECT_THROW(format_replay_file(r), std::invalid_argument);
  r = sample();
  r.options["key"] = "";
  EXPECT_THROW(format_replay_file(r), std::invalid_argument);
}

// Fuzzing the parser: any byte changes, insertions, deletions and truncations of a valid file
// either parse or throw ReplayFileError — never crash, hang or throw anything else.
RC_GTEST_PROP(ReplayFile, MutatedFilesNeverCrashTheParser, ()) {
  std::string text = format_replay_file(*rc::gen::element(sample(), sample_with_faults()));
  const int edits = *rc::gen::inRange(1, 8);
  for (int i = 0; i < edits && !text.empty(); ++i) {
    const auto at =
        static_cast<std::size_t>(*rc::gen::inRange<int>(0, static_cast<int>(text.size())));
    switch (*rc::gen::inRange(0, 4)) {
      case 0:
        text[std::min(at, text.size() - 1)] = *rc::gen::arbitrary<char>();
        break;
      case 1:
        text.insert(at, 1, *rc::gen::element('\n', ' ', '#', '9', '-', 'x', '\0'));
        break;
      case 2:
        text.erase(std::min(at, text.size() - 1), 1);
        break;
      default:
        text.resize(at);
        break;
    }
  }
  try {
    const ReplayFile r = parse_replay_file(text);
    RC_ASSERT(!r.scenario.empty());
    // What reads writes back (`trellis shrink` rewrites what it read) as the same file.
    RC_ASSERT(parse_replay_file(format_replay_file(r)) == r);
  } catch (const ReplayFileError&) {
  }
}

// Fault plans of any shape survive the text form exactly.
RC_GTEST_PROP(ReplayFile, FaultPlansRoundTrip, ()) {
  ReplayFile r = sample();
  r.fault_plan = *gen::fault_plan(6, std::chrono::seconds(2), 12);
  RC_ASSERT(parse_replay_file(format_replay_file(r)) == r);
}

TEST(ReplayFile, FaultCountAnnouncesTheFaultLines) {
  const std::string text = format_replay_file(sample_with_faults());
  EXPECT_NE(text.find("faults 3\nfault crash 12000 1 0 40000 0\n"), std::string::npos) << text;
  const std::string head = "trellis-replay 1\nscenario x\nseed 1\n";
  // Files from before the count: fault lines alone still read.
  EXPECT_EQ(
      parse_replay_file(head + "fault clog 5 0 1 7 0\ndecisions 0\nend\n").fault_plan.faults.size(),
      1u);
  // `faults 0`: a run without faults.
  EXPECT_TRUE(parse_replay_file(head + "faults 0\ndecisions 0\nend\n").fault_plan.empty());
  struct Bad {
    std::string body;
    std::size_t line;
    std::string says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"faults 2\nfault crash 0 0 0 1 0\ndecisions 0\nend\n", 4, "only 1 fault lines"},
           {"faults 1\nfault crash 0 0 0 1 0\nfault crash 0 0 0 1 0\n", 6, "more fault lines"},
           {"fault crash 0 0 0 1 0\nfaults 1\n", 5, "before the fault lines"},
           {"faults 1\nfaults 1\n", 5, "given twice"},
           {"faults -1\n", 4, "faults count"},
           {"faults 1\nfault crash 0 zero 0 1 0\n", 5, "HOST_A"},
           {"faults 1\nfault crash 0 0 0 99999999999999999 0\n", 5, "DURATION_US"},
           {"faults 1\nfault crash 0 0 0 1\n", 5, "6 values"},
       }) {
    try {
      parse_replay_file(head + bad.body);
      ADD_FAILURE() << "accepted " << bad.body;
    } catch (const ReplayFileError& e) {
      EXPECT_EQ(e.line(), bad.line) << bad.body << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(bad.says), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace trellis::sim
