// trellis/thread/to_thread.h — run blocking, synchronous code off the run loop (Trio's
// trio.to_thread).
//
// run_sync(fn) hands fn to a worker thread of the run's backend and blocks the calling task
// (not the loop) until fn returned; then it returns fn's result or rethrows fn's exception in
// the task. A CapacityLimiter bounds how many calls run at once (default: one limiter of 40
// tokens per run). Worker threads are reused; idle ones exit after a while. In the simulator
// the "thread" is a task on the loop thread that starts after a virtual latency drawn from
// the world's seeded random stream, so runs stay deterministic.
//
//   std::string text = trellis::to_thread::run_sync([&] { return slow_blocking_read(path); });
//   auto r = trellis::to_thread::run_sync(compute, {.limiter = &my_limiter});
//
// Inside fn, from_thread::run / run_sync (thread/from_thread.h) call back into the run.
#pragma once

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "trellis/sync/capacity_limiter.h"
#include "trellis/thread/internal/thread_call.h"

namespace trellis::to_thread {

struct Options {
  // Bounds concurrent calls; nullptr: current_default_thread_limiter(). It must outlive the
  // call, and an abandoned call holds its token until its thread finished.
  CapacityLimiter* limiter = nullptr;
  // What cancelling the waiting task does (Trio's abandon_on_cancel):
  // false: nothing until fn returned (the thread cannot be interrupted); run_sync then returns
  //   fn's result and the cancel is delivered at the task's next checkpoint — except that a
  //   from_thread::run call in progress or made later by fn is cancelled, and a Cancelled it
  //   carries out of fn becomes the task's Cancelled.
  // true: run_sync throws Cancelled at once; fn runs on to its end unobserved and its result
  //   or exception is discarded; later from_thread calls from it may get RunFinishedError.
  bool abandon_on_cancel = false;
};

// The run's default limiter: 40 tokens, created on first use, lives until the run ends.
// Change its capacity with set_total_tokens(). Throws UsageError outside a run. Not a
// checkpoint.
CapacityLimiter& current_default_thread_limiter();

// Runs fn() on a worker thread and returns its result (fn must return by value or void),
// rethrowing its exception. Blocks the calling task. A checkpoint: starts with
// checkpoint_if_cancelled and takes a limiter token (which may block, cancellably); after
// that, cancellation follows Options::abandon_on_cancel. fn is moved to the worker; it must
// not touch the run's objects except through from_thread. Throws UsageError outside a task
// or if the backend has no thread facet (ThreadFacet), std::system_error if no thread can be
// started.
template <class F>
std::invoke_result_t<std::decay_t<F>&> run_sync(F&& fn, Options options = {}) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  static_assert(!std::is_reference_v<R>, "to_thread::run_sync: fn must return by value");
  struct Call final : internal::ThreadCall {
    explicit Call(F&& f) : fn(std::forward<F>(f)) {}
    void invoke() noexcept override {
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
        } else {
          result.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    std::decay_t<F> fn;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
  };
  auto call = std::make_shared<Call>(std::forward<F>(fn));
  internal::run_thread_call(call, options.limiter, options.abandon_on_cancel);
  if (call->error != nullptr) std::rethrow_exception(call->error);
  if constexpr (!std::is_void_v<R>) return R(std::move(*call->result));
}

}  // namespace trellis::to_thread
