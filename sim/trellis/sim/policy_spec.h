// trellis/sim/policy_spec.h — a schedule policy named in one string, as TRELLIS_POLICY and
// `trellis run --policy=` take it, and the PCT steps estimate learned from a first run.
//
//   fifo | random | pct[:depth=D,steps=S] | exhaustive[:preemptions=P,budget=N,reduction=R]
//
// reduction=dpor turns on partial-order reduction (explore.h: sound only if every state the
// tasks share is a Trellis object or declared in sim/shared.h): DPOR without a preemption
// bound, or, when preemptions=P is given too, the bounded reduction (Reduction::kBoundedDpor:
// never more schedules than the bound alone, and every failure it finds).
//
//   PolicySpec spec = parse_policy_spec("pct:depth=3,steps=200");
//   Config config;
//   spec.apply(config);                                  // policy, pct_depth, pct_steps
//   if (spec.kind == PolicyKind::kPct && config.pct_steps_estimate == 0)
//     config.pct_steps_estimate = learn_pct_steps(body, config);
//
// PCT's steps estimate (k, the range its change points fall in) is best the length of a
// run: too large, and a short run gets no change point at all (PCT degrades to one fixed
// priority order). Not given, it is learned: the steps of one FIFO run of the body with the
// same config, once per sweep.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "trellis/sim/explore.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/world.h"

namespace trellis::sim {

struct PolicySpec {
  PolicyKind kind = PolicyKind::kRandom;  // not kDecisions (replay files carry those)
  bool exhaustive = false;                // then kind is unused: explore.h runs it
  int pct_depth = 3;
  std::uint64_t pct_steps_estimate = 0;  // 0: not given (learned)
  ExhaustiveOptions exhaustive_options{};

  // Sets config's policy, pct_depth and pct_steps_estimate (for exhaustive: unchanged).
  void apply(Config& config) const;
  // The spec as it would be written back ("pct:depth=3,steps=200").
  std::string name() const;
};

// The forms accepted, for error messages and usage text.
inline constexpr std::string_view kPolicySpecForms =
    "fifo | random | pct[:depth=D,steps=S] | "
    "exhaustive[:preemptions=P,budget=N,reduction=none|dpor]";

// Throws std::invalid_argument naming the accepted forms for anything else (an unknown
// policy or key, a value that is not a positive integer where one is needed).
PolicySpec parse_policy_spec(std::string_view text);

// The steps of one run of body under FIFO with `config` (its seed, its world): PCT's steps
// estimate for a sweep of that body. >= 1. A run that throws still counts its steps.
std::uint64_t learn_pct_steps(const SimBody& body, const Config& config);
// The same for a plain async test body (run_unit_with).
std::uint64_t learn_pct_steps(const std::function<void()>& body);

}  // namespace trellis::sim
