// libFuzzer target for the sweep-report parser behind `trellis sweep-merge` (reports come
// from other machines, through CI artifacts): any bytes either parse or are refused with
// SweepReportError; whatever parses writes back (format_sweep_report) as a report that reads
// as the same SweepReport, and merges as one shard (and is refused as a duplicate of itself).
// Anything else (a crash, another exception, a round trip that differs) is a finding.
//
//   build/fuzz/tools/trellis_sweep_report_fuzzer tools/fuzz/sweep_report_corpus -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "trellis/sim/sweep_report.h"

namespace {

// Merging the report with itself is always a duplicate shard; merging it alone fails only
// when shards are missing, and otherwise counts exactly its test cases.
void check_merge(const trellis::sim::SweepReport& report) {
  try {
    trellis::sim::merge_sweep_reports({report, report}, {"a", "b"});
    __builtin_trap();
  } catch (const trellis::sim::SweepReportError&) {
  }
  try {
    const trellis::sim::SweepMerge m = trellis::sim::merge_sweep_reports({report}, {"a"});
    if (report.shard.total != 1 || m.run != report.cases.size()) __builtin_trap();
    if (m.failed != report.failures() || m.first_failure != report.first_failure()) {
      __builtin_trap();
    }
  } catch (const trellis::sim::SweepReportError&) {
    if (report.shard.total == 1) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  trellis::sim::SweepReport report;
  try {
    report = trellis::sim::parse_sweep_report(text);
  } catch (const trellis::sim::SweepReportError&) {
    return 0;
  }
  // Throws std::invalid_argument (uncaught: a finding) if the writer refuses what was read.
  const std::string written = trellis::sim::format_sweep_report(report);
  if (!(trellis::sim::parse_sweep_report(written) == report)) __builtin_trap();
  check_merge(report);
  return 0;
}
