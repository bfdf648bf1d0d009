// trellis/sim/fault_config.h — swarm testing and cancellation as a fault: which kinds of
// fault a seed turns on, and the simulator's own cancellation of user cancel scopes.
//
//   sim::Config config{.seed = s};
//   config.swarm = true;                              // each seed picks its fault kinds
//   config.cancel_faults.enable_ppm = 500'000;        // half the seeds cancel scopes
//   ...
//   if (world.fault_enabled(sim::FaultKind::kCrash)) host.crash();   // a nemesis asks
//
// Swarm testing (Groce et al. 2012; FoundationDB, TigerBeetle): a run with every fault kind
// on at once hides bugs that need a quiet background (say, lots of crashes but no
// partitions). With Config::swarm, each seed turns each kind on with probability 1/2 (at
// least one on). The world applies the kinds it owns (disk errors, torn writes, datagram
// faults, buggify, cancellation: a kind that is off zeroes its knobs); a scenario's nemesis
// asks fault_enabled() for the kinds it injects itself (crashes, partitions, clogs, slow
// links).
//
// Cancellation as a fault: in a seed that enables it, the simulator picks 1..faults_max
// task steps among the first step_window; right after each (or after the next step of a
// host task that qualifies), it cancels one scope chosen at random among the scopes with a
// deadline that the task runs inside (move_on_after, fail_after, CancelScope with a
// deadline) — as if that deadline had fired early. A task blocked at that checkpoint gets
// Cancelled there, a runnable one at its next checkpoint, so RAII unwinding, shields,
// nursery error handling and half-done channel operations all get exercised. Scopes without
// a deadline (nurseries, servers) are never targets: nothing in a correct program expects
// them to be cancelled out of the blue, while every deadline may expire. Everything is
// derived from the seed: replays repeat it. Harness code timing its own checks should
// compare current_time() with its deadline rather than trust cancelled_caught().
#pragma once

#include <cstdint>
#include <string_view>

namespace trellis::sim {

enum class FaultKind : std::uint32_t {
  kCrash,           // hosts crash and restart (scenario nemesis)
  kPartition,       // network partitions (scenario nemesis)
  kClog,            // clogged links (scenario nemesis)
  kSlowLink,        // per-link latency (scenario nemesis)
  kDiskError,       // DiskConfig::eio_ppm
  kTornWrite,       // DiskConfig::torn_write_ppm
  kDatagramFaults,  // NetworkConfig datagram loss, duplication, reordering
  kBuggify,         // buggify points
  kCancellation,    // CancelFaultConfig
  kCount,
};

// "crash", "partition", ... (for traces and reports).
std::string_view fault_kind_name(FaultKind kind);

struct CancelFaultConfig {
  unsigned enable_ppm = 0;            // chance, per seed, that this seed cancels scopes
  std::uint32_t faults_max = 3;       // 1..faults_max cancellations in such a seed
  std::uint64_t step_window = 5'000;  // at steps chosen among the first step_window
};

}  // namespace trellis::sim
