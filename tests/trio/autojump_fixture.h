// What the Trio ports share to get one exact, repeatable schedule: a batch policy that always
// keeps wake-up order, and Trio's autojump_clock fixture (a MockClock with autojump threshold
// 0, so virtual time jumps straight to the next deadline once every task is blocked).
//
//   TEST(TrioX, Y) { trellis::run_autojump([] { trellis::sleep(1s); }); }
//
// Not sim::FifoPolicy: that one steps ONE task per batch (a StepPolicy); these ports follow
// Trio's batches, where every runnable task steps once per batch.
#pragma once

#include <cstddef>
#include <utility>

#include "trellis/core/run.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/fakes/mock_clock.h"

namespace trellis {

// Trio runs each batch in wake-up order or its reverse; this policy always keeps wake-up
// order (it chooses 0 every time), so a test can assert one exact interleaving.
class WakeOrderPolicy final : public SchedulePolicy {
 public:
  std::size_t choose(std::size_t n, ChoiceKind kind) override {
    (void)n;
    (void)kind;
    return 0;
  }
};

// Runs main with a MockClock at autojump threshold 0 and, unless options name a policy or a
// schedule seed, the WakeOrderPolicy.
template <class F>
decltype(auto) run_autojump(F&& main, RunOptions options = {}) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  WakeOrderPolicy wake_order;
  options.clock = &clock;
  if (options.policy == nullptr && !options.schedule_seed.has_value()) {
    options.policy = &wake_order;
  }
  return run(std::forward<F>(main), std::move(options));
}

}  // namespace trellis
