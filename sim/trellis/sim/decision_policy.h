// trellis/sim/decision_policy.h — DecisionPolicy: choices taken from a vector of integers,
// FIFO (0) once it runs out. Feeding it another policy's recorded() replays that run exactly;
// RapidCheck generates and shrinks such vectors, and fuzzers mutate them.
//
// Each decision d is used as d % n for a choice among n, so any vector is valid input (a
// shrunk or mutated decision still means something). recorded() holds the choices actually
// made (d % n, or 0 after the end), which is the minimal replay of the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/sim/step_policy.h"

namespace trellis::sim {

class DecisionPolicy final : public StepPolicy {
 public:
  explicit DecisionPolicy(std::vector<std::uint32_t> decisions);
  // Decisions consumed so far (<= decisions.size()).
  std::size_t consumed() const noexcept { return next_; }
  // True once a choice had to fall back to FIFO.
  bool exhausted() const noexcept { return exhausted_; }

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;

 private:
  std::vector<std::uint32_t> decisions_;
  std::size_t next_ = 0;  // Invariant: next_ <= decisions_.size()
  bool exhausted_ = false;
};

}  // namespace trellis::sim
