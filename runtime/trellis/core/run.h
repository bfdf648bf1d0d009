// trellis/core/run.h — running a program: trellis::run(main, options).
//
//   int main() {
//     return trellis::run([] {
//       trellis::sleep(std::chrono::milliseconds(10));
//       return 0;
//     });
//   }
//
// run() starts the run loop on the calling thread, runs main as the main task, and returns
// its result (or rethrows its exception, unwrapped) once every task has finished. Calling
// run() from inside a run throws UsageError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/core/backend.h"
#include "trellis/core/clock.h"
#include "trellis/core/instrument.h"
#include "trellis/core/schedule_policy.h"

namespace trellis {

struct RunOptions {
  Clock* clock = nullptr;            // nullptr: the real monotonic clock
  Backend* backend = nullptr;        // nullptr: the epoll backend
  SchedulePolicy* policy = nullptr;  // nullptr: Trio-like randomized batch order (TrioPolicy)
  std::vector<Instrument*> instruments{};
  bool strict_exception_groups = true;  // as Trio >= 0.25
  // Seed of the default policy (ignored when `policy` is set). Unset: a fresh seed per run,
  // as Trio. Set it to make the default order reproducible.
  std::optional<std::uint64_t> schedule_seed{};
  // Default usable stack size of every task, in bytes (0: 256 KiB). Pages are touched lazily.
  std::size_t stack_size = 0;
  // SIGINT (Ctrl-C) cancels the main task and run() then throws KeyboardInterrupt, as Trio.
  // Only on the process's main thread, and only while SIGINT is at its default action when
  // the run starts (a program's own SIGINT handler is left alone).
  bool keyboard_interrupt = true;
  // Lock-order checking, as Linux's lockdep (sync/lock_order.h): every task's Lock and
  // StrictFIFOLock acquisitions are recorded, and the acquisition that completes an order
  // inversion throws LockOrderError; deadlock reports name each lock's holder. Off by default
  // (production pays one branch per acquire); on under sim::World, the sim harness and
  // TRELLIS_ASYNC_TEST.
  bool check_lock_order = false;
  // The main task's name in deadlock reports and task trees (empty: after main's type).
  std::string main_name{};
};

namespace internal {
// Runs `main` as the main task of a new run (named after `main_type`), with the options'
// clock, backend and policy or the real defaults (posix/default_run.cc). Rethrows main's
// exception.
void run_main(FunctionRef<void()> main, const RunOptions& options, const std::type_info& main_type);
// The same with every interface chosen (options.clock/backend/policy are ignored): the core's
// run loop (core/runner.cc).
void run_with(FunctionRef<void()> main, const RunOptions& options, Clock& clock, Backend& backend,
              SchedulePolicy& policy, const std::type_info& main_type);
}  // namespace internal

template <class F>
decltype(auto) run(F&& main, RunOptions options = {}) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "trellis::run: main must return by value");
  if constexpr (std::is_void_v<R>) {
    internal::run_main([&] { main(); }, options, typeid(std::decay_t<F>));
  } else {
    std::optional<R> result;
    internal::run_main([&] { result.emplace(main()); }, options, typeid(std::decay_t<F>));
    return R(std::move(*result));
  }
}

// The current time on the run's clock. Throws UsageError outside a run.
Time current_time();
// Sleeps for `d` (>= 0, else std::invalid_argument); sleep(0) is exactly checkpoint().
// A checkpoint.
void sleep(Duration d);
// Sleeps until `deadline`; a deadline in the past is still a checkpoint.
void sleep_until(Time deadline);
// Blocks until cancelled. A checkpoint.
[[noreturn]] void sleep_forever();
// Yields to the scheduler, then throws Cancelled if the task is in a cancelled scope
// (Trio's lowlevel.checkpoint: a schedule point and a cancel point).
void checkpoint();
// Throws Cancelled if the task is in a cancelled scope; otherwise returns without yielding.
void checkpoint_if_cancelled();

}  // namespace trellis
