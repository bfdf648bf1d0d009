// trellis/thread/internal/thread_call.h — the untyped core of to_thread / from_thread.
// Internal: the templates in to_thread.h and from_thread.h wrap a callable into these.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "trellis/core/run_token.h"

namespace trellis {
class CancelScope;
class CapacityLimiter;
}  // namespace trellis

namespace trellis::internal {

// A to_thread job as its worker sees it; from_thread finds it without a token.
struct WorkerContext {
  RunToken token;
  // The members below are touched on the run-loop thread only.
  // Invariant: cancel_requested is set once the waiting task was cancelled (no abandon);
  // from then on every from_thread::run scope of this job is cancelled at once.
  bool cancel_requested = false;
  // The cancel scopes of this job's from_thread::run calls that are still running.
  std::vector<CancelScope*> from_thread_scopes;
};

// The worker context of the calling thread (real worker) or task (simulated worker), or
// nullptr.
WorkerContext* current_worker_context() noexcept;

// One to_thread::run_sync call: invoke() runs the user's callable off the loop and keeps its
// outcome.
class ThreadCall {
 public:
  virtual ~ThreadCall() = default;
  // Worker. Runs the callable; keeps its result, or its exception in `error`.
  virtual void invoke() noexcept = 0;

  std::exception_ptr error;
};

// Runs call->invoke() through the run's ThreadFacet under the limiter; returns once it has
// finished (or at once, throwing Cancelled, if abandoned on cancel). See to_thread::run_sync.
void run_thread_call(std::shared_ptr<ThreadCall> call, CapacityLimiter* limiter,
                     bool abandon_on_cancel);

// Runs fn on the run-loop thread (in a new system task if as_task) and blocks the calling
// thread until it has; fn must record its own outcome and not throw. Throws UsageError /
// RunFinishedError as from_thread documents.
void call_from_thread(const RunToken* token, std::function<void()> fn, bool as_task,
                      const char* operation);

}  // namespace trellis::internal
