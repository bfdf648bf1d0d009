// trellis/scenarios/lease/lease_scenario.h — lease-based leader election with clock-dependent
// logic: one LeaseServer host and three LeaseNode hosts. Every host's clock runs at its own
// rate, up to 5% fast or slow (drawn from the seed; the simulator has one true clock, so the
// scenario gives each host a drifting clock over it). Faults: server and node crashes and
// restarts, symmetric and one-way partitions between a node and the server (long enough for
// a lease to run out), slow and clogged links.
//
// Invariants: never two nodes leader at the same instant of true (virtual) time
// (LeaseChecker over the leadership intervals); once the faults stop, some node gets the
// lease within 2 s of virtual time (liveness).
// Planted bug (option planted_bug=on): the node trusts its own clock — it counts the full
// lease from when the grant arrived, with no margin for drift — so a node whose renewals are
// cut off goes on leading after the server has given the lease to another.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario lease_scenario();

}  // namespace trellis::scenarios
