// trellis/sim/internal/trace_key.h — the Mazurkiewicz trace of a run's prefix as a key, for
// the bounded reduction of the exhaustive explorer (explore.h, Reduction::kBoundedDpor).
// Internal to the explorer.
//
// Two step sequences are the same trace when they hold the same steps (per task, in program
// order, each touching the same objects the same way) and order every two dependent steps
// (dpor_policy.h's dependent(), plus wake-up and spawn edges) the same way. So a trace is
// the set of its step descriptors: the step (task, its index in the task, what it touched)
// with, per task, how many of that task's steps happen before it. The key holds the number
// of steps and two independent 64-bit hashes of that set (sums of the descriptors' hashes,
// so that each node's key adds its new steps to the last): equal traces, equal keys; unequal
// traces share a key only by a collision of both 64-bit sums at once (about 2^-128 for
// unrelated descriptors), the one way the bounded reduction could skip a trace.
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
