// trellis/thread/from_thread.h — call into a run from another thread (Trio's
// trio.from_thread).
//
// From inside a to_thread::run_sync worker the run is found implicitly; from any other
// thread pass a RunToken (lowlevel::current_run_token(), taken inside the run). The calling
// thread blocks until the run has answered; fn's result is returned and its exception
// rethrown in the calling thread.
//
//   trellis::to_thread::run_sync([&] {
//     auto line = blocking_read();
//     trellis::from_thread::run([&] { send_channel.send(line); });   // may block the task
//     trellis::from_thread::run_sync([&] { counter += 1; });          // runs at once, no task
//   });
//
// Both throw UsageError when called from a run-loop thread (that would deadlock) — except
// inside a simulated worker, which is a task on the loop thread: there fn is simply called —
// or from a thread that is neither a worker nor given a token; RunFinishedError when the run
// has ended (or ends before answering).
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "trellis/core/run_token.h"
#include "trellis/thread/internal/thread_call.h"

namespace trellis::from_thread {
namespace detail {

template <class F>
std::invoke_result_t<F&> call(const RunToken* token, F& fn, bool as_task, const char* what) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "from_thread: fn must return by value");
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
  std::exception_ptr error;
  // The calling thread blocks until the closure ran (or was dropped): references are safe.
  internal::call_from_thread(
      token,
      [&] {
        try {
          if constexpr (std::is_void_v<R>) {
            fn();
          } else {
            result.emplace(fn());
          }
        } catch (...) {
          error = std::current_exception();
        }
      },
      as_task, what);
  if (error != nullptr) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) return R(std::move(*result));
}

}  // namespace detail

// Runs fn() synchronously on the run-loop thread, outside every task (it must not block or
// checkpoint; it may set events, send with send_nowait, spawn system tasks...), and returns
// its result. Blocks the calling thread.
template <class F>
std::invoke_result_t<F&> run_sync(F&& fn) {
  return detail::call(nullptr, fn, false, "from_thread::run_sync");
}
template <class F>
std::invoke_result_t<F&> run_sync(const RunToken& token, F&& fn) {
  return detail::call(&token, fn, false, "from_thread::run_sync");
}

// Runs fn() as a new system task of the run (it may block and checkpoint) and returns its
// result once it finished. Blocks the calling thread. Called from a to_thread worker whose
// task was cancelled (without abandon), fn runs cancelled. Cancelled escaping fn reaches the
// calling thread as an exception like any other.
template <class F>
std::invoke_result_t<F&> run(F&& fn) {
  return detail::call(nullptr, fn, true, "from_thread::run");
}
template <class F>
std::invoke_result_t<F&> run(const RunToken& token, F&& fn) {
  return detail::call(&token, fn, true, "from_thread::run");
}

}  // namespace trellis::from_thread
