// libFuzzer target for the replay-file parser: any bytes either parse or are refused with
// ReplayFileError, and whatever parses writes back (format_replay_file) as a file that reads
// as the same ReplayFile. Anything else (a crash, another exception, a round trip that
// differs) is a finding.
//
//   build/fuzz/tools/trellis_replay_file_fuzzer tools/fuzz/replay_corpus -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trellis/sim/replay_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  trellis::sim::ReplayFile replay;
  try {
    replay = trellis::sim::parse_replay_file(text);
  } catch (const trellis::sim::ReplayFileError&) {
    return 0;
  }
  // Throws std::invalid_argument (uncaught: a finding) if the writer refuses what was read.
  const std::string written = trellis::sim::format_replay_file(replay);
  if (!(trellis::sim::parse_replay_file(written) == replay)) __builtin_trap();
  return 0;
}
