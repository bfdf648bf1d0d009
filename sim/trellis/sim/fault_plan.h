// trellis/sim/fault_plan.h — FaultPlan: faults given as data (what, when, to whom, for how
// long) that the world injects by itself, so that a property test or a fuzzer can generate
// them and shrink them, and a replay file can carry them.
//
//   sim::Config config{.seed = 7};
//   config.fault_plan.faults.push_back(
//       {.kind = sim::PlannedFault::Kind::kCrash, .at = 40ms, .a = 0, .duration = 100ms});
//   // host 0 crashes 40 ms into the run and restarts 100 ms later
//
// Host numbers count hosts in the order they were added and wrap around (a % hosts), so
// any generated plan means something for any world; a fault that names the same host twice
// (a partition of a host from itself) or a host never started does nothing. Faults may
// overlap; each one is undone `duration` after it began (restart, heal that link, reset
// that link's latency; a clog ends by itself). A crash of a host that is already down, or a
// restart of one that is up, does nothing.
//
// kKillProcess kills one program (sim/program.h) that host a runs at `at` — a worker process
// of to_process, a child of run_process — as SIGKILL would: number b % (the programs running
// there), counted in the order they were spawned. A host running no program then is left
// alone; nothing is undone (the program's parent sees it die, as it would a real crash).
//
// kDiskErrors makes host a's disk fail for `duration`: every operation of the class b
// selects fails with EIO, deterministically (no draw), as a disk whose controller or
// medium has gone bad for a while would (disk_config.h has the model). b % 4: 0 every read,
// write and sync; 1 reads only (read, pread); 2 writes only (write, pwrite, ftruncate); 3
// syncs only (fsync, fdatasync, fsync_directory). Opening, listing, renaming and unlinking
// (metadata the page cache answers) keep working. A failed write changes nothing; a failed
// fsync makes nothing durable and leaves the file's unsynced writes as they were (a later
// fsync that succeeds makes them durable; a crash before it loses them). Overlapping
// windows add up: a class fails while any window naming it is open.
//
// kSignal delivers signal number b (1..64; a replay file rejects others, a generated plan's
// fault with another b does nothing but is traced) to host a at `at`, as Host::send_signal
// does (sim_signals.h): to the innermost open_signal_receiver of the host's tasks listening
// for it, else its default action (most signals crash the host, which stays down; SIGCHLD,
// SIGURG, SIGWINCH, SIGCONT and the stop signals are ignored). A host that is down drops
// it. Nothing is undone; duration is unused.
//
// The plan runs in a task of the world (like the driver), so it stops when the driver
// returns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/time.h"

namespace trellis::sim {

struct PlannedFault {
  enum class Kind : std::uint32_t {
    kCrash,            // host a crashes; restarts after duration
    kPartition,        // a and b cannot reach each other for duration
    kPartitionOneWay,  // a cannot reach b for duration
    kClog,             // a -> b stalls for duration (delayed, never lost)
    kSlowLink,         // a <-> b packets take [latency, 2 * latency] for duration
    kKillProcess,      // SIGKILL to program b (mod those running) of host a; duration unused
    kDiskErrors,       // host a's disk fails ops of class b % 4 with EIO for duration
    kSignal,           // signal number b to host a's receivers; duration unused
    kCount,
  };
  Kind kind = Kind::kCrash;
  Duration at{};  // after the run starts
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  Duration duration{};
  Duration latency{};  // kSlowLink only

  friend bool operator==(const PlannedFault&, const PlannedFault&) = default;
};

// kDiskErrors's classes (b % 4) and kSignal's valid numbers.
enum class DiskErrorClass : std::uint32_t { kAll, kReads, kWrites, kSyncs };
inline constexpr std::uint32_t kPlannedSignalMax = 64;  // kSignal: b in 1..kPlannedSignalMax

struct FaultPlan {
  std::vector<PlannedFault> faults;
  bool empty() const noexcept { return faults.empty(); }
  // When the last fault is undone (zero for no faults): how long the plan lasts.
  Duration end() const noexcept;
  friend bool operator==(const FaultPlan&, const FaultPlan&) = default;
};

// "crash", "partition", "partition_one_way", "clog", "slow_link", "kill_process",
// "disk_errors", "signal".
std::string_view planned_fault_name(PlannedFault::Kind kind);
// Throws std::invalid_argument listing the valid names.
PlannedFault::Kind parse_planned_fault_name(std::string_view name);
// "crash host 0 at 40ms for 100ms" — for reports.
std::string describe(const PlannedFault& fault);
// One paragraph for a failure report, in plan order, hosts by name (host_names[a % size];
// numbers if host_names is empty):
//   "crash replica1 at 1.2s, restart at 1.9s; partition client1|replica2 at 2.0s-2.4s"
// "no faults" for an empty plan.
std::string summarize(const FaultPlan& plan, const std::vector<std::string>& host_names);

}  // namespace trellis::sim
