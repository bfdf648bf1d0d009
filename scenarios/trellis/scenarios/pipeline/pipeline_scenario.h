// trellis/scenarios/pipeline/pipeline_scenario.h — the pipeline scenario: a Pipeline of 2 to
// 4 workers over bounded channels (0 to 3 buffered items) runs 30 to 80 items of work that
// takes random time; while it runs, 1 to workers-1 workers are stopped at random times,
// and in a quarter of the seeds the whole pipeline has a deadline that cuts it short. The
// simulator also cancels the deadline early as a fault (half the seeds).
//
// Invariants: every collected result is right and no item is collected twice; a completed
// run collected every item exactly once; whether or not it completed, run() returns with
// every channel handle closed and no task waiting on a channel (clean shutdown), within
// 30 virtual seconds (sim::require_progress). Planted bug (option planted_bug=on): a
// stopped worker drops the item it has received but not yet forwarded.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario pipeline_scenario();

}  // namespace trellis::scenarios
