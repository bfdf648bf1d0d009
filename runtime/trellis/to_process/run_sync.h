// trellis/to_process/run_sync.h — run a registered function in a worker process.
//
//   int sum = trellis::to_process::run_sync<int>("add", 2, 3);
//   to_process::Options options{.cancellable = true};
//   auto digest = to_process::run_sync<std::string>(options, "hash", data);
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "trellis/core/errors.h"
#include "trellis/sync/capacity_limiter.h"
#include "trellis/to_process/codec.h"
#include "trellis/to_process/errors.h"
#include "trellis/to_process/worker_context.h"

namespace trellis::to_process {

struct Options {
  // false (trio-parallel's default): once the call has a worker, cancellation waits for the
  // worker's answer; run_sync returns it (or throws the call's error) and the cancel is
  // delivered at the task's next checkpoint. true: a cancel kills the worker (SIGKILL),
  // reaps it and throws Cancelled at once.
  bool cancellable = false;
  CapacityLimiter* limiter = nullptr;  // nullptr: current_default_worker_limiter()
  WorkerContext* context = nullptr;    // nullptr: cache_scope's, else the run's default
};

// The run's default limiter: as many tokens as CPUs (4 in a simulated run, so that a run
// replays the same on any machine), made on first use, lives with the run.
// Throws UsageError outside a run. Not a checkpoint.
CapacityLimiter& current_default_worker_limiter();

namespace internal {
// Sends the call, returns the decoded result value. See run_sync.
msgpack::object_handle call_worker(const Options& options, std::string_view function,
                                   std::vector<char> arguments);
[[noreturn]] void throw_result_mismatch(std::string_view function, const char* type_name);
}  // namespace internal

// Runs the function registered as `function` in a worker with `args`, returns its result as
// R (void: none). A checkpoint: checks for cancellation, then takes a limiter token and a
// worker of the context (both may wait, cancellably), then follows Options::cancellable.
// Throws WorkerError (the function threw, or no such function), BrokenWorkerError (the worker
// died or broke the protocol), UsageError (the result is not an R, or outside a run),
// std::invalid_argument (arguments larger than kPayloadSizeMax), OSError (no worker could be
// started). Argument and result types need msgpack adaptors (a compile error otherwise).
template <class R, class... Args>
R run_sync(Options options, std::string_view function, Args&&... args) {
  msgpack::object_handle result =
      internal::call_worker(options, function, internal::pack_arguments(args...));
  if constexpr (!std::is_void_v<R>) {
    try {
      return internal::convert<R>(result.get());
    } catch (const msgpack::type_error&) {
      internal::throw_result_mismatch(function, typeid(R).name());
    }
  }
}

template <class R, class... Args>
R run_sync(std::string_view function, Args&&... args) {
  return run_sync<R>(Options{}, function, std::forward<Args>(args)...);
}

}  // namespace trellis::to_process
