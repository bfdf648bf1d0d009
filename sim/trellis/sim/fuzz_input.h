// trellis/sim/fuzz_input.h — turns a fuzzer's bytes into a simulated run's seed, fault plan
// and decision stream, so that coverage-guided fuzzing (libFuzzer) searches schedules and
// faults. Every byte string means something (short ones leave the rest at zero/absent), and
// a small change of the bytes is a small change of the run, which is what lets coverage
// feedback steer. tools/fuzz/schedule_fuzzer.cc is the entry point built on it.
//
//   FuzzInput in = decode_fuzz_input({data, size});
//   Config config{.seed = in.seed, .policy = PolicyKind::kDecisions};
//   config.decisions = in.decisions;
//   config.fault_plan = in.fault_plan;
//
// Layout: [seed: 2 bytes LE] [fault count: 1 byte, mod faults_max + 1] [8 bytes per fault:
// kind, at (2 bytes, a fraction of horizon), host a, host b (a signal fault: 1 + b % 64),
// duration (2 bytes, a fraction of horizon / 2), latency (x 200 us)] [decisions: 1 byte each, up to
// decisions_max].
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "trellis/core/time.h"
#include "trellis/sim/fault_plan.h"

namespace trellis::sim {

struct FuzzLimits {
  Duration horizon = std::chrono::seconds(2);  // faults start within it
  std::size_t faults_max = 4;
  std::size_t decisions_max = 4096;
};

struct FuzzInput {
  std::uint64_t seed = 0;
  FaultPlan fault_plan;
  std::vector<std::uint32_t> decisions;
};

// Total: never throws for any bytes.
FuzzInput decode_fuzz_input(std::span<const std::uint8_t> bytes, const FuzzLimits& limits = {});

}  // namespace trellis::sim
