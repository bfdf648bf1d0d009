// trellis/to_process/worker_context.h — pools of worker processes (trio-parallel's
// WorkerContext and cache_scope).
//
//   trellis::to_process::cache_scope({.idle_timeout = 10s, .init = "load_tables"}, [&] {
//     ... run_sync calls in here (and in tasks started in here) use this scope's workers ...
//   });  // every worker of the scope has been stopped and reaped here
//
// A context owns the workers it started. A call takes an idle worker (the most recently used
// one) or starts a new one; afterwards the worker goes back idle, unless it died, broke the
// protocol, was killed by a cancellation or retired (its retire function said so). A worker
// idle for idle_timeout is stopped (its pipe is closed, it exits, it is reaped). Workers
// belong to the run that started them: when the run ends they are killed and reaped, and a
// context used in a later run starts new ones.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "trellis/core/task_local.h"
#include "trellis/core/time.h"

namespace trellis::to_process {

struct WorkerContextOptions {
  Duration idle_timeout = std::chrono::seconds(600);  // an idle worker is stopped after this
  std::string init{};  // registered void() function run once in each new worker
  // Registered bool() function run in the worker after each call; true: the worker exits
  // after sending that call's answer. One that throws also retires the worker (trio-parallel
  // kills the worker instead, and the next call on it gets BrokenWorkerError).
  std::string retire{};
  // Workers at most; calls beyond it wait for one. 0: the number of CPUs (4 in a simulated
  // run, as current_default_worker_limiter()).
  std::size_t max_workers = 0;
  // Added: the program a worker runs (empty: this executable, kSelfExecutable). In a World,
  // the fake program installed under that name.
  std::string executable{};
  // Added: how long stop() waits for a worker to exit after closing its pipe, before SIGKILL.
  Duration stop_grace = std::chrono::seconds(5);
};

struct WorkerContextStatistics {
  std::size_t workers_idle = 0;
  std::size_t workers_busy = 0;
  std::size_t workers_started = 0;  // since the context was made
  std::size_t workers_stopped = 0;  // stopped, retired, crashed or killed (and reaped)
};

namespace internal {
class Pool;
}

class WorkerContext {
 public:
  // Throws std::invalid_argument for a negative idle_timeout or stop_grace, or an init or
  // retire name that no TRELLIS_WORKER_FUNCTION registered. Starts nothing.
  explicit WorkerContext(WorkerContextOptions o = {});
  // Kills (SIGKILL) and reaps the workers still idle; call stop() first to let them exit.
  ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  const WorkerContextOptions& options() const noexcept { return options_; }
  // Stops every idle worker: closes its pipe, waits for it to exit (killing it after
  // stop_grace) and reaps it. A checkpoint only in that it may park; shielded from
  // cancellation (it always finishes). Busy workers go on; they are stopped by the next
  // stop() or the destructor. Run-loop thread, inside a run.
  void stop();
  WorkerContextStatistics statistics() const;

  internal::Pool& pool() noexcept { return *pool_; }

 private:
  WorkerContextOptions options_;
  std::shared_ptr<internal::Pool> pool_;  // shared with the pool's idle-reaper task
};

namespace internal {
// The context run_sync uses when Options::context is null: cache_scope's, else the run's.
TaskLocal<WorkerContext*>& current_context_local();
WorkerContext& current_context();
}  // namespace internal

// Runs body() with a new WorkerContext(o) as the current one (for body and the tasks it
// starts), then stops and reaps all of its workers, also when body throws. Returns body's
// result.
template <class F>
decltype(auto) cache_scope(WorkerContextOptions o, F&& body) {
  WorkerContext context(std::move(o));
  auto current = internal::current_context_local().scoped_set(&context);
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      body();
      context.stop();
    } else {
      auto result = body();
      context.stop();
      return result;
    }
  } catch (...) {
    context.stop();
    throw;
  }
}

}  // namespace trellis::to_process
