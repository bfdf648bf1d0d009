// trellis/core/lowlevel.h — the run loop's low-level interface (Trio's trio.lowlevel).
//
// Everything above the core (sync primitives, channels, streams, the fakes) is written
// against this header only. The one way to block is wait_task_rescheduled(); the one way to
// wake a task is reschedule().
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "trellis/core/access_recorder.h"
#include "trellis/core/backend.h"
#include "trellis/core/clock.h"
#include "trellis/core/instrument.h"
#include "trellis/core/run_token.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/task.h"
#include "trellis/core/time.h"

namespace trellis::lowlevel {

// Blocks the calling task until someone calls reschedule() on it; then returns, or throws the
// exception passed to reschedule(). The protocol (Trio's wait_task_rescheduled):
// - Before calling, arrange for exactly one future reschedule(task) (register the task in a
//   wait queue, an I/O registration, ...).
// - If the task's context becomes cancelled while it waits, abort(cancelled) is called at
//   most once, on the run-loop thread. Return Abort::kSucceeded after undoing the
//   registration: the task is then rescheduled with `cancelled`. Return Abort::kFailed to stay
//   parked until the registered waker reschedules the task (it may deliver `cancelled` then).
// - Calling this inside an already-cancelled scope calls abort at once.
// `what` names the wait in deadlock reports and dumps; it must outlive the wait (a literal).
// A schedule point; a cancel point only through `abort`.
void wait_task_rescheduled(AbortFn abort, std::string_view what);

// Makes a parked task runnable; it resumes in the next batch and throws `error` if non-null.
// Exactly one reschedule per wait (an abort that returned kSucceeded counts as the one).
// Run-loop thread only. (Two overloads rather than a defaulted argument: the plain wake-up
// is the hot one, and an exception_ptr argument costs a move and a destructor call.)
void reschedule(Task& task);
void reschedule(Task& task, std::exception_ptr error);

// Told, on the run-loop thread, when a task it is registered for exits (ParkingLot's
// breakers: a task that dies holding a Lock breaks it). Registrations belong to a run:
// run_ended() tells a listener still registered when the run is over. Neither may throw,
// park or checkpoint; task_exited may reschedule tasks.
class TaskExitListener {
 public:
  virtual void task_exited(const Task& task) noexcept = 0;
  virtual void run_ended() noexcept = 0;

 protected:
  ~TaskExitListener() = default;
};
// Registers listener for task (once per call; it is told once per registration, in
// registration order). Throws BrokenResourceError if the task has exited, UsageError outside
// a run.
void add_task_exit_listener(Task& task, TaskExitListener& listener);
// Removes one registration; UsageError if there is none.
void remove_task_exit_listener(Task& task, TaskExitListener& listener);
// Removes every registration of listener in the current run (no-op outside a run).
void forget_task_exit_listener(TaskExitListener& listener) noexcept;

// A schedule point that is never a cancel point (Trio's cancel_shielded_checkpoint).
void cancel_shielded_checkpoint();

// The running task / the root task (the ancestor of every task, which is not main).
// Throw UsageError outside a run.
Task& current_task();
// The running task, or nullptr (outside a run, or in run-loop code between tasks). Never throws.
Task* current_task_if_any() noexcept;
Task& current_root_task();
bool in_run() noexcept;

Clock& current_clock();
Backend& current_backend();
// The run's backend facets. Throw UsageError outside a run or if the backend lacks them.
IoFacet& current_io();
NetworkFacet& current_network();
FileSystemFacet& current_file_system();
SchedulePolicy& current_policy();
// The run's thread facet (core/thread_facet.h). Throws UsageError outside a run or if the
// backend lacks it.
ThreadFacet& current_threads();

// The run's signals (core/signal_facet.h): the backend's own where it has them (the
// simulator's), else the process's real signals through a per-run hub created on first use.
// Throws UsageError outside a run.
SignalFacet& current_signals();

// A per-run slot for layers above the core (the default thread limiter), keyed by the address
// of a static the caller owns; empty until first set, destroyed with the run after every task
// has exited. Run-loop thread only. Throws UsageError outside a run, std::invalid_argument for
// a null key.
std::shared_ptr<void>& run_local(const void* key);

// Lock tracking (RunOptions::check_lock_order). The sync layer (sync/lock_order.h) keeps, per
// run, which task holds and waits on which Lock; the core only owns that state (destroyed with
// the run, after every task has exited) and asks it to explain a parked task in a deadlock
// report.
class LockTracking {
 public:
  virtual ~LockTracking() = default;
  // Appended to `task`'s line in a deadlock report ("" when it knows nothing of the task).
  // Must not throw anything but std::bad_alloc.
  virtual std::string describe_wait(const Task& task) const = 0;
};
// The run's lock-tracking slot, or nullptr when the run does not check lock order (or outside
// a run). Never throws: when the check is off this is one thread-local load and one branch.
std::unique_ptr<LockTracking>* lock_tracking_slot() noexcept;

// A token for this run that other threads may use (core/run_token.h). Every call returns an
// equal token. Throws UsageError outside a run. Not a checkpoint.
RunToken current_run_token();

// Starts fn as a task in the run's system nursery (Trio's spawn_system_task): it outlives the
// caller, is cancelled when main exits, and an exception escaping it fails the run with
// InternalError. Callable from a task or from run-loop code (a RunToken closure). Throws
// UsageError outside a run, RunFinishedError once the system nursery has closed. Not a
// checkpoint.
void spawn_system_task(std::function<void()> fn, std::string_view name = "system task");

// A batch (every task runnable when it formed, one step each) longer than this runs in slices
// of this many task steps. Between slices the run loop polls again without blocking: timers
// that came due and I/O that became ready during the slice wake their tasks, which run before
// the rest of the batch. So a timer or a socket waits at most one slice of steps, however
// many tasks are runnable, and every task of a batch still runs once in it. Counted in steps,
// never in time: a seeded schedule stays a function of its seed.
inline constexpr std::size_t kBatchSliceSteps = 256;

struct RunStatistics {
  std::size_t tasks_living = 0;
  std::size_t tasks_runnable = 0;
  Duration time_to_next_deadline = Duration::max();  // may be negative
  std::size_t deadlines_pending = 0;
};
RunStatistics current_statistics();

// Adding twice is a no-op; removing an absent instrument throws std::invalid_argument.
void add_instrument(Instrument& instrument);
void remove_instrument(Instrument& instrument);

// A human-readable tree of every task, its nurseries and what each waits on.
std::string dump_task_tree();

// Blocks until every other task has been blocked (no runnable task, no I/O event, no expired
// deadline) for `cushion` of real time. Waiters with the smallest cushion wake together. While
// any task waits here the clock does not autojump. Cancellable. A checkpoint.
void wait_all_tasks_blocked(Duration cushion = Duration::zero());

}  // namespace trellis::lowlevel
