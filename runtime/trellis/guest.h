// trellis/guest.h — guest mode: a Trellis run living inside another event loop (Trio's
// start_guest_run). The host loop keeps its thread; the run's iterations execute on that
// thread as callbacks the host runs, and the run's blocking I/O wait happens on a helper
// thread that hands each wake-up back to the host.
//
//   trellis::start_guest_run(main, {
//       .run_sync_soon_threadsafe = [&](std::function<void()> fn) { host.post(fn); },
//       .done_callback = [&](std::exception_ptr error) { host.stop(); }});
//   host.run();   // the host's own loop; main runs interleaved with the host's work
//
// Semantics are run()'s: nurseries, cancellation, timeouts, sockets, threads and RunTokens
// behave the same; main's outcome goes to done_callback (nullptr: success, else main's
// exception or the DeadlockError / InternalError run() would throw). start_guest_run()
// returns at once, before main starts. Each callback runs at most 512 task steps (small
// batches share a callback; a big batch is spread over several), so the host stays
// responsive however many tasks are runnable; a callback that goes on with a batch first
// polls, as run() does between slices, so due timers and ready I/O wait at most one
// callback's 512 steps, not the rest of the batch. A guest run never installs a SIGINT
// handler (the host owns the process's signals).
//
// Errors: start_guest_run() inside a run, or while another guest run lives on this thread,
// throws UsageError; so does a missing run_sync_soon_threadsafe. An exception thrown by
// done_callback propagates out of the host's call of that callback (into the host loop).
// A host that destroys one of the run's callbacks without calling it abandons the run: if
// that happens on the host's thread, the run is cancelled and finished there and then, and
// done_callback receives GuestRunAbandoned; elsewhere it is reported on stderr.
#pragma once

#include <exception>
#include <functional>
#include <vector>

#include "trellis/core/clock.h"
#include "trellis/core/errors.h"
#include "trellis/core/instrument.h"
#include "trellis/core/schedule_policy.h"

namespace trellis {

struct GuestRunOptions {
  // Required: runs fn soon on the host's thread; callable from any thread.
  std::function<void(std::function<void()>)> run_sync_soon_threadsafe;
  // Optional: the same, called only on the host's thread (often cheaper).
  std::function<void(std::function<void()>)> run_sync_soon_not_threadsafe;
  // Receives main's outcome (nullptr: success); called on the host's thread.
  std::function<void(std::exception_ptr)> done_callback;
  Clock* clock = nullptr;            // nullptr: the real monotonic clock
  SchedulePolicy* policy = nullptr;  // nullptr: Trio-like randomized batch order
  std::vector<Instrument*> instruments{};
};

// The host dropped one of the run's callbacks without running it.
class GuestRunAbandoned : public InternalError {
 public:
  using InternalError::InternalError;
};

// Starts `main` as the main task of a new run hosted by the caller's event loop.
void start_guest_run(std::function<void()> main, GuestRunOptions options);

}  // namespace trellis
