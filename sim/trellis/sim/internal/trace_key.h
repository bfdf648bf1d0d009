// trellis/sim/internal/trace_key.h — the Mazurkiewicz trace of a run's prefix as a key, for
// the bounded reduction of the exhaustive explorer (explore.h, Reduction::kBoundedDpor).
// Internal to the explorer.
//
// Two step sequences are the same trace when they hold the same steps (per task, in program
// order, each touching the same objects the same way) and order every two dependent steps
// (dpor_policy.h's dependent(), plus wake-up and spawn edges) the same way. The key says
// exactly that: for each step, sorted by (task, its index in the task), the step and, per
// task, how many of that task's steps happen before it. Equal keys, equal traces.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "trellis/sim/internal/dpor_policy.h"

namespace trellis::sim::internal {

// keys[i] for each node i of log from `from` on: the key of the trace of the steps before
// node i, with the context a continuation depends on (the task that ran last, the runnable
// tasks; how many steps in a row the last one took, DporNode::run_length, is left to the
// caller, who compares it as an order rather than for equality). Empty (no key) for a
// node that is not a task choice or follows one that is not (simultaneous events, user
// choices: their alternatives depend on more than the trace).
std::vector<std::string> prefix_trace_keys(const DporLog& log, std::size_t from);

}  // namespace trellis::sim::internal
