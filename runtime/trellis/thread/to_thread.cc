// to_thread::run_sync and from_thread over the run's ThreadFacet and RunToken.
#include "trellis/thread/to_thread.h"

#include <condition_variable>
#include <mutex>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"
#include "trellis/core/task_local.h"
#include "trellis/core/thread_facet.h"
#include "trellis/thread/from_thread.h"

namespace trellis {
namespace internal {
namespace {

constexpr std::size_t kDefaultThreadLimit = 40;  // Trio's DEFAULT_LIMIT

// A real worker thread's job (set only while it runs the job).
thread_local WorkerContext* worker_thread_context = nullptr;
// A simulated worker's job: its task (a task on the loop thread) carries it.
TaskLocal<WorkerContext*> worker_task_context{nullptr};

// One run_sync call, shared by the waiting task, the work closure and the done closure.
struct Job {
  WorkerContext context;
  std::shared_ptr<ThreadCall> call;
  CapacityLimiter* limiter = nullptr;
  // Invariant: waiter is non-null exactly while the calling task is parked for this job.
  lowlevel::Task* waiter = nullptr;
  bool finished = false;  // done ran
};

// The answer a from_thread caller waits for.
struct Handoff {
  std::mutex mutex;
  std::condition_variable changed;
  // Invariant: settled goes true once; error is fixed from then on.
  bool settled = false;
  std::exception_ptr error;
};

// Held by the closure sent to the loop: settles the handoff when the call is done, or with
// RunFinishedError when the closure is destroyed unrun (the run ended first).
class HandoffGuard {
 public:
  explicit HandoffGuard(std::shared_ptr<Handoff> handoff) : handoff_(std::move(handoff)) {}
  HandoffGuard(const HandoffGuard&) = delete;
  HandoffGuard& operator=(const HandoffGuard&) = delete;
  ~HandoffGuard() {
    settle(std::make_exception_ptr(
        RunFinishedError("from_thread: the run exited before the call could run")));
  }
  void settle(std::exception_ptr error) {
    std::lock_guard lock(handoff_->mutex);
    if (handoff_->settled) return;
    handoff_->settled = true;
    handoff_->error = std::move(error);
    handoff_->changed.notify_all();
  }

 private:
  std::shared_ptr<Handoff> handoff_;
};

}  // namespace

WorkerContext* current_worker_context() noexcept {
  if (!lowlevel::in_run()) return worker_thread_context;
  return worker_task_context.get();
}

void run_thread_call(std::shared_ptr<ThreadCall> call, CapacityLimiter* limiter,
                     bool abandon_on_cancel) {
  lowlevel::Task& task = lowlevel::current_task();
  ThreadFacet& threads = lowlevel::current_threads();
  checkpoint_if_cancelled();
  CapacityLimiter& tokens =
      limiter != nullptr ? *limiter : to_thread::current_default_thread_limiter();
  tokens.acquire_on_behalf_of(call.get());

  auto job = std::make_shared<Job>();
  job->context.token = lowlevel::current_run_token();
  job->call = call;
  job->limiter = &tokens;
  const RunToken run = job->context.token;
  ThreadFacet::JobId id = 0;
  try {
    id = threads.start_job(
        [job] {
          if (!lowlevel::in_run()) {
            worker_thread_context = &job->context;
            job->call->invoke();
            worker_thread_context = nullptr;
          } else {
            worker_task_context.set(&job->context);
            job->call->invoke();
          }
        },
        [job, run] {
          // A late result of an earlier run on the same backend: its limiter is gone.
          if (!run.run_active()) return;
          TRELLIS_ASSERT(!job->finished);
          job->finished = true;
          job->limiter->release_on_behalf_of(job->call.get());
          if (lowlevel::Task* waiter = job->waiter) {
            job->waiter = nullptr;
            lowlevel::reschedule(*waiter);
          }
        });
  } catch (...) {
    tokens.release_on_behalf_of(call.get());
    throw;
  }
  job->waiter = &task;
  lowlevel::wait_task_rescheduled(
      [&](std::exception_ptr) {
        TRELLIS_ASSERT(job->waiter == &task);
        if (abandon_on_cancel) {
          job->waiter = nullptr;
          threads.abandon_job(id);
          return lowlevel::Abort::kSucceeded;
        }
        job->context.cancel_requested = true;
        for (CancelScope* scope : job->context.from_thread_scopes) scope->cancel();
        return lowlevel::Abort::kFailed;
      },
      "to_thread::run_sync");
  TRELLIS_ASSERT(job->finished);
  TRELLIS_ASSERT(job->waiter == nullptr);
  // A Cancelled that fn carried out of a cancelled from_thread::run belongs to another
  // task's scope: deliver this task's own instead.
  if (job->context.cancel_requested && is_cancelled(call->error)) checkpoint_if_cancelled();
}

void call_from_thread(const RunToken* token, std::function<void()> fn, bool as_task,
                      const char* operation) {
  WorkerContext* context = current_worker_context();
  if (lowlevel::in_run()) {
    // A simulated worker is a task on the loop thread: the call is already where it must run.
    if (context != nullptr && (token == nullptr || *token == context->token)) {
      fn();
      return;
    }
    throw UsageError(std::string(operation) +
                     ": called from a run-loop thread, which it would block; call it from a "
                     "to_thread worker or another thread");
  }
  RunToken target;
  if (token != nullptr) {
    target = *token;
  } else if (context != nullptr) {
    target = context->token;
  } else {
    throw UsageError(std::string(operation) +
                     ": not called from a to_thread worker; pass a RunToken");
  }
  // Only a call back into the worker's own run follows its task's cancellation.
  WorkerContext* job = context != nullptr && target == context->token ? context : nullptr;
  auto handoff = std::make_shared<Handoff>();
  auto guard = std::make_shared<HandoffGuard>(handoff);
  if (!as_task) {
    target.run_sync_soon([guard, fn = std::move(fn)] {
      fn();
      guard->settle(nullptr);
    });
  } else {
    target.run_sync_soon([guard, fn = std::move(fn), job, operation] {
      try {
        lowlevel::spawn_system_task(
            [guard, fn, job] {
              CancelScope scope;
              if (job != nullptr) {
                job->from_thread_scopes.push_back(&scope);
                if (job->cancel_requested) scope.cancel();
              }
              scope.run([&] { fn(); });
              if (job != nullptr) std::erase(job->from_thread_scopes, &scope);
              guard->settle(nullptr);
            },
            operation);
      } catch (...) {
        guard->settle(std::current_exception());
      }
    });
  }
  guard.reset();
  std::unique_lock lock(handoff->mutex);
  handoff->changed.wait(lock, [&] { return handoff->settled; });
  if (handoff->error != nullptr) std::rethrow_exception(handoff->error);
}

}  // namespace internal

namespace to_thread {

CapacityLimiter& current_default_thread_limiter() {
  static const char key = 0;
  std::shared_ptr<void>& slot = lowlevel::run_local(&key);
  if (slot == nullptr) slot = std::make_shared<CapacityLimiter>(internal::kDefaultThreadLimit);
  return *static_cast<CapacityLimiter*>(slot.get());
}

}  // namespace to_thread
}  // namespace trellis
