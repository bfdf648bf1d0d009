// trellis/scenarios/wal/wal_scenario.h — the write-ahead-log scenario: a host appends
// records with WriteAheadLog while the driver crashes and restarts it; simulated disks tear
// unsynced writes at sector boundaries on every crash.
//
// Invariant: after every restart, every record acknowledged before the crash is recovered,
// and the recovered records are exactly the appended sequence's prefix (a torn record is
// never read as valid). Planted bug (option planted_bug=on): acknowledge before fsync.
//
// Planned faults (off by default, so existing seeds keep their meaning): disk_faults=on
// draws windows in which the db's disk fails reads, writes, syncs or all with EIO (the db
// drops the log and recovers it again after 1 ms); signals=on draws SIGHUP (recover the log
// again) and SIGTERM (stop cleanly; before the receiver opens it crashes the host). Both are
// in the seed's fault plan: replay files carry them and shrinking minimizes them.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario wal_scenario();

}  // namespace trellis::scenarios
