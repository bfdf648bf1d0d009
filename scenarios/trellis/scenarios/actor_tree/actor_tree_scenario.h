// trellis/scenarios/actor_tree/actor_tree_scenario.h — the actor-tree scenario (issue 19):
// a supervisor actor on host "supervisor" streams 40 items to worker actors (on host
// "workers", option remote_workers, else beside it) through contexts; workers fail at random
// (a buggify point) and are replaced, the items in flight re-sent.
//
// Invariants: every item is delivered exactly once with its square, within 60 virtual
// seconds (sim::require_progress). Planted bug (planted_bug=on): a replacement worker is
// re-sent the last item already answered — an item delivered twice.
// Real mode (`trellis serve actor-tree`): an actor tree whose worker actor squares the
// integers a TCP client sends, one per line (see actor_tree_serve in the .cc).
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario actor_tree_scenario();

}  // namespace trellis::scenarios
