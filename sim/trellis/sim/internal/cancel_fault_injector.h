// trellis/sim/internal/cancel_fault_injector.h — the instrument that cancels user cancel
// scopes at chosen host-task steps (sim/fault_config.h says what and why).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/instrument.h"

namespace trellis {
class CancelScope;
}

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

class CancelFaultInjector final : public Instrument {
 public:
  // steps: ascending step numbers (counting every task step from 1) at which to arm a
  // cancellation, which fires right after the step of a host task that is inside a scope
  // with a deadline. is_host_root(scope): true for a host's outermost scope (only scopes
  // inside it are candidates).
  CancelFaultInjector(std::vector<std::uint64_t> steps, Prng prng,
                      std::function<bool(const CancelScope*)> is_host_root, Trace* trace);

  void after_task_step(lowlevel::Task& task) override;

  std::uint64_t cancellations() const noexcept { return cancellations_; }

 private:
  std::vector<std::uint64_t> steps_;
  std::size_t next_ = 0;  // Invariant: steps_[0..next_) have fired
  std::uint64_t step_ = 0;
  Prng prng_;
  std::function<bool(const CancelScope*)> is_host_root_;
  Trace* trace_;
  std::uint64_t cancellations_ = 0;
};

}  // namespace trellis::sim::internal
