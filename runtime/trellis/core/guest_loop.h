// trellis/core/guest_loop.h — the run loop turned inside out, for a guest run (trellis/guest.h).
//
// Internal to the runtime (namespace internal, as run_with): a GuestLoop is one run whose
// iterations a host's event loop drives, one call at a time, on the host's thread. The host
// side (posix/guest_run.cc) starts it, calls step() until it is done, waits for I/O on a
// helper thread whenever step() asks it to (Backend::wait_for_readiness), then calls
// finish(), which ends the run as run() does.
#pragma once

#include <memory>
#include <typeinfo>

#include "trellis/base/function_ref.h"
#include "trellis/core/backend.h"
#include "trellis/core/clock.h"
#include "trellis/core/run.h"
#include "trellis/core/schedule_policy.h"

namespace trellis::internal {

class Runner;

class GuestLoop {
 public:
  struct Step {
    bool done = false;
    Duration wait{};  // > 0: wait for I/O this long (or until woken), then step(true)
  };

  // Throws UsageError if this thread is inside a run.
  GuestLoop(const RunOptions& options, Clock& clock, Backend& backend, SchedulePolicy& policy);
  GuestLoop(const GuestLoop&) = delete;
  GuestLoop& operator=(const GuestLoop&) = delete;
  ~GuestLoop();

  // Each call binds the run to the calling thread for its duration (throws UsageError if
  // the thread is inside another run). `main` must outlive the run.
  void start(FunctionRef<void()> main, const std::type_info& main_type);
  // At most a slice of task steps (Runner::kGuestSliceSteps). `waited`: the previous step
  // asked for a wait, now over.
  Step step(bool waited);
  // After a step said done: rethrows main's error, or DeadlockError / InternalError.
  void finish();
  // Cancels every task (the run then winds down over the next steps), as a KeyboardInterrupt
  // or a crashed RunToken closure would.
  void cancel_everything();

 private:
  std::unique_ptr<Runner> runner_;
};

}  // namespace trellis::internal
