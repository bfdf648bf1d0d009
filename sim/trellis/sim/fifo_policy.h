// trellis/sim/fifo_policy.h — FifoPolicy: tasks step in the order they became runnable, and
// the earliest of simultaneous events goes first. The one schedule with no randomness: a
// baseline, and what DecisionPolicy falls back to.
#pragma once

#include "trellis/sim/step_policy.h"

namespace trellis::sim {

class FifoPolicy final : public StepPolicy {
 public:
  FifoPolicy() = default;

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;
};

}  // namespace trellis::sim
