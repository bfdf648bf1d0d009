// trellis/scenarios/wal/wal_scenario.h — the write-ahead-log scenario: a host appends
// records with WriteAheadLog while the driver crashes and restarts it; simulated disks tear
// unsynced writes at sector boundaries on every crash.
//
// Invariant: after every restart, every record acknowledged before the crash is recovered,
// and the recovered records are exactly the appended sequence's prefix (a torn record is
// never read as valid). Planted bug (option planted_bug=on): acknowledge before fsync.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario wal_scenario();

}  // namespace trellis::scenarios
