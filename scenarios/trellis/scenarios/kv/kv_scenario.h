// trellis/scenarios/kv/kv_scenario.h — the flagship scenario: a replicated key-value store
// (three KvReplica hosts, quorum reads and writes from three KvClient hosts) under replica
// crashes and restarts (torn unsynced writes on disk), symmetric and one-way partitions, slow
// and clogged links. The faults are a plan drawn up front from the seed (configure() puts it
// in Config::fault_plan; the world injects it), one pair of hosts per entry, so a run's
// faults are in its result and replay file and shrink with its schedule. Options
// disk_faults=on and signals=on add planned windows of disk EIO and SIGHUP/SIGTERM on the
// replicas (4 rounds from a stream of their own, so the nemesis's plan stays the same); the
// replicas then run under a supervisor that opens them again (recovering the log) after each.
// Swarm testing (Config::swarm) picks the world's own fault kinds (disk, datagrams,
// cancellation); the plan does not consult it.
//
// Invariants: every key's history of reads and writes is linearizable (checked with
// check_register_history over the recorded operations; an operation cut off by its deadline
// may or may not have taken effect), and once the faults stop and the network heals, every
// client completes a read within 2 s of virtual time (liveness).
// Planted bug (option planted_bug=on): reads skip the write-back phase, so two reads that
// race a write can return the new value and then the old one.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario kv_scenario();

}  // namespace trellis::scenarios
