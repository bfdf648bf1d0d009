// trellis/sim/sweep_report.h — a sweep's JUnit XML report, read back to merge the reports of
// a sweep's shards (`trellis sweep --junit=F`, `trellis sweep-merge F...`).
//
// The report is ordinary JUnit XML (CI dashboards show it) in exactly one layout, which the
// writer below produces and the parser accepts, nothing else: one <testsuite> whose
// <properties> say which sweep and which shard it is, then one <testcase> per seed run, in seed
// order.
//
//   <?xml version="1.0" encoding="UTF-8"?>
//   <testsuites>
//     <testsuite name="trellis sweep kv shard 2/7" tests="143" failures="1" time="3.500000">
//       <properties>
//         <property name="trellis.sweep_report" value="1"/>
//         <property name="scenario" value="kv"/>
//         <property name="options" value="planted_bug=on"/>
//         <property name="policy" value="random"/>
//         <property name="base_seed" value="1"/>
//         <property name="seeds" value="1000"/>
//         <property name="shard" value="2/7"/>
//         <property name="complete" value="true"/>
//         <property name="replay" value="out/kv.seed9.replay"/>
//       </properties>
//       <testcase classname="kv" name="seed 3" time="0.012000"/>
//       <testcase classname="kv" name="seed 9" time="0.020000">
//         <failure message="invariant violated: ...">replay: trellis run kv --seed=9 ...</failure>
//       </testcase>
//       ...
//     </testsuite>
//   </testsuites>
//
// (An unsharded sweep's suite is named "trellis sweep kv".) parse_sweep_report() never
// crashes on bad input: anything else — another tool's JUnit, a hand-edited or truncated
// report, a seed that is not in the shard the report claims — throws SweepReportError naming
// the line (a libFuzzer target, tools/fuzz/sweep_report_fuzzer.cc, holds it to that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/sim/shard.h"

namespace trellis::sim {

class SweepReportError : public std::runtime_error {
 public:
  // `where`: the report's path (or "" for text), `line` 1-based (0: the report as a whole).
  SweepReportError(const std::string& where, std::size_t line, const std::string& problem);
  std::size_t line() const noexcept { return line_; }

 private:
  std::size_t line_;
};

// One seed's run.
struct SweepCase {
  std::uint64_t seed = 0;
  std::uint64_t micros = 0;  // wall time of the run
  bool failed = false;
  std::string message;  // the failure (empty when passed); sweep_report_text()

  friend bool operator==(const SweepCase&, const SweepCase&) = default;
};

struct SweepReport {
  static constexpr int kVersion = 1;
  std::string scenario;  // a word: printable ASCII, no space
  std::string options;   // --options as given ("" for none); sweep_report_text()
  std::string policy;    // the policy's name; sweep_report_text()
  std::uint64_t base_seed = 1;
  std::uint64_t seeds = 0;  // of the whole sweep, every shard together
  Shard shard;
  // Every seed of the shard ran (false: a failure stopped the shard, or a worker died).
  bool complete = true;
  std::uint64_t micros = 0;  // wall time of the shard
  // The replay file of the shard's first failing seed ("" when none was written).
  std::string replay;
  // Invariant (parse checks it, format relies on it): ascending seeds, each in
  // slice(), at most slice().count of them and exactly that many when complete.
  std::vector<SweepCase> cases;

  SeedSlice slice() const;  // this shard's seeds
  std::size_t failures() const;
  std::optional<std::uint64_t> first_failure() const;
  friend bool operator==(const SweepReport&, const SweepReport&) = default;
};

// Text as a report holds it: control characters become spaces and bytes outside ASCII '?'
// (a report is plain ASCII), at most max_size characters.
std::string sweep_report_text(std::string_view text, std::size_t max_size = 1000);

// The XML. Throws std::invalid_argument if a field breaks the rules above.
std::string format_sweep_report(const SweepReport& report);
// Throws SweepReportError (naming `where` if given).
SweepReport parse_sweep_report(std::string_view text, const std::string& where = {});
// Files; errors name the path (SweepReportError; std::runtime_error when writing fails).
// The writer writes PATH.partial and renames it: PATH, once it exists, is whole.
SweepReport read_sweep_report(const std::string& path);
void write_sweep_report(const std::string& path, const SweepReport& report);

// The union of one sweep's shard reports.
struct SweepMerge {
  std::string scenario, options, policy;
  std::uint64_t base_seed = 1, seeds = 0, shards = 1;
  std::uint64_t run = 0;          // seeds run, all shards together
  std::uint64_t failed = 0;       // of which failed
  std::vector<Shard> incomplete;  // shards that did not run all their seeds
  // The smallest failing seed over all shards, its shard, the report it came from (an index
  // into merge_sweep_reports' arguments) and that report's replay file ("" if none).
  std::optional<std::uint64_t> first_failure;
  Shard first_failure_shard;
  std::size_t first_failure_report = 0;
  std::string replay;
};

// Merges the reports of every shard of one sweep (`names[i]` names reports[i] in errors).
// Throws SweepReportError when they are not exactly that: reports of different sweeps
// (scenario, options, policy or seeds differ), shards of different partitions (their seed
// ranges overlap), the same shard twice, or a shard missing. Each report's own seeds were
// checked against its shard when it was parsed, so distinct shards of one partition are
// disjoint and together cover the sweep's seeds.
SweepMerge merge_sweep_reports(const std::vector<SweepReport>& reports,
                               const std::vector<std::string>& names);

}  // namespace trellis::sim
