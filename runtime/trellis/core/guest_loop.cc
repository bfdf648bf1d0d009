#include "trellis/core/guest_loop.h"

#include "trellis/core/errors.h"
#include "trellis/core/internal/runner.h"

namespace trellis::internal {

GuestLoop::GuestLoop(const RunOptions& options, Clock& clock, Backend& backend,
                     SchedulePolicy& policy) {
  if (Runner::current() != nullptr) {
    throw UsageError("start_guest_run() called from inside a run (a run already owns this thread)");
  }
  runner_ = std::make_unique<Runner>(options, clock, backend, policy);
}

GuestLoop::~GuestLoop() = default;

void GuestLoop::start(FunctionRef<void()> main, const std::type_info& main_type) {
  Runner::ThreadBinding binding(*runner_);
  runner_->start_guest(main, main_type);
}

GuestLoop::Step GuestLoop::step(bool waited) {
  Runner::ThreadBinding binding(*runner_);
  const Runner::GuestStep step = runner_->guest_step(waited);
  return {.done = step.done, .wait = step.wait};
}

void GuestLoop::finish() {
  Runner::ThreadBinding binding(*runner_);
  runner_->finish_guest();
}

void GuestLoop::cancel_everything() {
  Runner::ThreadBinding binding(*runner_);
  runner_->cancel_run();
}

}  // namespace trellis::internal
