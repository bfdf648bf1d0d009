// trellis/scenarios/bank/bank_scenario.h — the bank scenario: 3 to 5 client tasks on a bank
// host make random transfers between 4 accounts, each transfer under a timeout, then a
// settlement batch of transfers without timeouts, while an auditor takes every lock in turn
// to check the books; the simulator also cancels timeouts early as faults (half the seeds).
//
// Invariants: at every audit (a quiescent point: every lock held) and at the end, the total
// is what the bank started with and no account is overdrawn; the journal holds exactly the
// transfers that moved money; and nothing deadlocks — the clients finish within 2 virtual
// seconds (sim::require_progress). Planted bug (option planted_bug=on): a transfer checks
// the funds before taking the locks and does not check again after (a check-then-act race
// across a checkpoint), so two transfers from one account can overdraw it. A second one
// (option lock_order_bug=on): transfers lock their two accounts in argument order, so two
// opposite transfers deadlock — timeouts hide it, the settlement batch does not.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario bank_scenario();

}  // namespace trellis::scenarios
