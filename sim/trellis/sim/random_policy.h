// trellis/sim/random_policy.h — RandomPolicy: every choice uniformly at random from a seeded
// generator (a random walk over interleavings: each step, any runnable task may go next).
//
//   trellis::sim::RandomPolicy policy(seed);
//   trellis::run(main, {.clock = &mock, .policy = &policy});
#pragma once

#include <cstdint>

#include "trellis/base/prng.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim {

class RandomPolicy final : public StepPolicy {
 public:
  explicit RandomPolicy(std::uint64_t seed);

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;

 private:
  Prng prng_;
};

}  // namespace trellis::sim
