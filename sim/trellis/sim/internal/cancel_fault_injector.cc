#include "trellis/sim/internal/cancel_fault_injector.h"

#include <algorithm>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/task.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {

CancelFaultInjector::CancelFaultInjector(std::vector<std::uint64_t> steps, Prng prng,
                                         std::function<bool(const CancelScope*)> is_host_root,
                                         Trace* trace)
    : steps_(std::move(steps)), prng_(prng), is_host_root_(std::move(is_host_root)), trace_(trace) {
  TRELLIS_ASSERT(std::is_sorted(steps_.begin(), steps_.end()));
}

void CancelFaultInjector::after_task_step(lowlevel::Task& task) {
  ++step_;
  if (next_ == steps_.size() || step_ < steps_[next_]) return;
  // Armed: the first host task inside a scope with a deadline takes it.
  const std::vector<CancelScope*> scopes = task.enclosing_cancel_scopes();
  std::vector<CancelScope*> candidates;
  bool in_host = false;
  for (CancelScope* scope : scopes) {
    if (is_host_root_(scope)) {
      in_host = true;
      break;
    }
    if (scope->deadline() != kNoDeadline && !scope->cancel_called()) candidates.push_back(scope);
  }
  if (!in_host || candidates.empty()) return;
  const std::size_t pick = prng_.below(candidates.size());
  candidates[pick]->cancel();
  ++cancellations_;
  ++next_;
  if (trace_ != nullptr) trace_->record("cancel fault", task.id() * 64 + pick);
}

}  // namespace trellis::sim::internal
