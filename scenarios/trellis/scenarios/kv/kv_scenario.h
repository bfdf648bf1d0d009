// trellis/scenarios/kv/kv_scenario.h — the flagship scenario: a replicated key-value store
// (three KvReplica hosts, quorum reads and writes from three KvClient hosts) under replica
// crashes and restarts (torn unsynced writes on disk), symmetric and one-way partitions, slow
// and clogged links. Swarm testing: each seed picks which of those kinds it injects, and half
// the seeds whose swarm allows it also cancel client deadlines early (cancellation faults).
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
