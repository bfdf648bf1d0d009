// trellis/sim/replay_file.h — ReplayFile: everything needed to rerun one simulated run
// exactly, as a versioned, human-readable text file.
//
//   # trellis replay file: rerun with  trellis replay this-file
//   trellis-replay 1
//   scenario kv_store
//   seed 1234
//   policy decisions
//   pct_depth 3
//   option planted_bug on
//   faults 1
//   fault crash 40000 0 0 100000 0      # kind, at, host a, host b, duration, latency (us)
//   decisions 5
//   0 1 0 2 1
//   end
//
// Lines are "key value"; '#' starts a comment line; unknown keys are errors (a typo must
// not silently change the run). `decisions N` is followed by N integers over any number of
// lines. `faults N` announces the N `fault` lines after it (the run's whole fault plan, in
// order; `faults 0`: a run without faults); files written before it have `fault` lines
// alone and still read. parse_replay_file() never crashes on bad input: it throws ReplayFileError
// naming the line and the problem (a fuzzed property test holds it to that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/sim/world.h"

namespace trellis::sim {

class ReplayFileError : public std::runtime_error {
 public:
  ReplayFileError(std::size_t line, const std::string& problem, const std::string& path = {});
  // 1-based line of the problem (0: the file as a whole, e.g. it ended early).
  std::size_t line() const noexcept { return line_; }
  const std::string& problem() const noexcept { return problem_; }

 private:
  std::size_t line_;
  std::string problem_;
};

struct ReplayFile {
  static constexpr int kVersion = 1;
  std::string scenario;  // what to run (a scenario name or test name); non-empty
  std::uint64_t seed = 0;
  PolicyKind policy = PolicyKind::kDecisions;
  int pct_depth = 3;
  // Scenario options ("planted_bug" -> "on"); keys and values without spaces.
  std::map<std::string, std::string> options;
  // Faults the world injects by itself (fault_plan.h), in order.
  FaultPlan fault_plan;
  // The schedule's choices (for PolicyKind::kDecisions).
  std::vector<std::uint32_t> decisions;

  friend bool operator==(const ReplayFile&, const ReplayFile&) = default;
};

// The text form (ends with "end\n").
std::string format_replay_file(const ReplayFile& replay);
// Throws ReplayFileError.
ReplayFile parse_replay_file(std::string_view text);
// Reading and writing files; errors name the path (ReplayFileError, or std::runtime_error
// for I/O failures).
ReplayFile read_replay_file(const std::string& path);
void write_replay_file(const std::string& path, const ReplayFile& replay);

std::string_view policy_name(PolicyKind kind);
// Throws std::invalid_argument listing the valid names.
PolicyKind parse_policy_name(std::string_view name);

}  // namespace trellis::sim
