// trellis/core/internal/runner.h — the run loop (one per trellis::run call).
//
// Internal. The Runner owns the tasks of a run, the run queue, the deadline heap and the
// waiters of wait_all_tasks_blocked, and drives them with the run's Clock, Backend and
// SchedulePolicy. Its loop (loop()) is Trio's unrolled_run: compute a timeout, wait for I/O,
// expire deadlines, then run one batch — every task runnable at the start of the batch runs
// one step, in the order the policy picks; tasks woken during the batch run in the next one.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/base/intrusive_list.h"
#include "trellis/core/backend.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/clock.h"
#include "trellis/core/instrument.h"
#include "trellis/core/internal/deadline_heap.h"
#include "trellis/core/internal/fiber.h"
#include "trellis/core/internal/run_token_state.h"
#include "trellis/core/internal/signal_hub.h"
#include "trellis/core/internal/wakeup_prefetch.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/task.h"

namespace trellis::internal {

struct CancelledFactory;

// The bytes at the top of a task's stack that hold its TaskRun (task.h).
// A task's stack size is kept in these units (lowlevel::Task::stack_pages_).
inline constexpr std::size_t kStackPageBytes = 4096;
inline constexpr std::size_t kTaskRunBytes = (sizeof(TaskRun) + 63) / 64 * 64;

class Runner {
 public:
  // Teardown after a deadlock gets this many rounds to unwind every task before the run is
  // abandoned (a task that blocks again in its cleanup costs a round).
  static constexpr int kDeadlockTeardownRoundsMax = 8;

  Runner(const RunOptions& options, Clock& clock, Backend& backend, SchedulePolicy& policy);
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  ~Runner();  // trims the thread's stack pool

  // Task-exit listeners (lowlevel::TaskExitListener; ParkingLot's breakers). add throws
  // BrokenResourceError for a task that has exited, remove UsageError if not registered.
  void add_exit_listener(lowlevel::Task& task, lowlevel::TaskExitListener& listener);
  void remove_exit_listener(lowlevel::Task& task, lowlevel::TaskExitListener& listener);
  // A listener going away: drop every registration naming it.
  void forget_exit_listener(lowlevel::TaskExitListener& listener) noexcept;

  // Runs main as the main task until every task has exited; rethrows main's error, or throws
  // DeadlockError / InternalError.
  void run(FunctionRef<void()> main, const std::type_info& main_type);

  // A guest run (core/guest_loop.h) is run() turned inside out, driven by a host's loop on
  // the host's thread: start_guest() spawns main; each guest_step() runs a slice of task steps
  // and says whether the run is done, or how long it wants to wait for I/O before the next
  // step (the host waits on another thread: Backend::wait_for_readiness); finish_guest()
  // ends the run as run() does (rethrows main's error...). The caller binds this runner to
  // the thread around each call (ThreadBinding). `main` must outlive the run.
  struct GuestStep {
    bool done = false;
    Duration wait{};  // > 0: wait for I/O this long, then call guest_step(true)
  };
  void start_guest(FunctionRef<void()> main, const std::type_info& main_type);
  GuestStep guest_step(bool waited);
  void finish_guest();
  // Cancels every task of the run (they unwind over the next iterations).
  void cancel_run() {
    if (system_nursery_ != nullptr)
      system_nursery_->cancel_scope().cancel_with(CancelSource::kShutdown);
  }
  // Makes `runner` this thread's current run while it lives (nullptr: none). Throws
  // UsageError if the thread is already in another run.
  class ThreadBinding {
   public:
    explicit ThreadBinding(Runner& runner);
    ~ThreadBinding() { this_thread_ = nullptr; }
    ThreadBinding(const ThreadBinding&) = delete;
    ThreadBinding& operator=(const ThreadBinding&) = delete;
  };

  // The runner of this thread's current run, or nullptr.
  static Runner* current() noexcept { return this_thread_; }
  // The running runner and task; throws UsageError naming `operation` outside a task.
  // Inline: every checkpoint and channel operation starts here.
  static Runner& require(const char* operation) {
    Runner* runner = this_thread_;
    if (runner == nullptr) [[unlikely]]
      not_in_run(operation);
    return *runner;
  }
  lowlevel::Task& require_task(const char* operation) {
    if (current_ == nullptr) [[unlikely]]
      not_in_task(operation);
    return *current_;
  }

  lowlevel::Task* current_task() const noexcept { return current_; }
  lowlevel::Task& root_task() const noexcept { return *root_; }
  Clock& clock() const noexcept { return clock_; }
  Backend& backend() const noexcept { return backend_; }
  SchedulePolicy& policy() const noexcept { return policy_; }
  bool strict_exception_groups() const noexcept { return strict_exception_groups_; }
  // The running task's time (Clock::task_now): current_time() and deadline checks.
  Time now() const { return clock_.task_now(); }

  // Tasks.
  void spawn(lowlevel::Task* task, Nursery* nursery, const SpawnOptions& options,
             Nursery* eventual_parent);
  // (The plain wake-up is inline, in runner_inline.h: every channel hand-off calls it.)
  inline void reschedule(lowlevel::Task& task);
  void reschedule(lowlevel::Task& task, std::exception_ptr error);
  // The running task waits until rescheduled (lowlevel::wait_task_rescheduled's protocol).
  // (park, yield and checkpoint: forced inline, in runner_inline.h.)
  inline void park(lowlevel::AbortFn abort, std::string_view what);
  // The running task goes to the back of the run queue: a schedule point, never a cancel
  // point (lowlevel::cancel_shielded_checkpoint).
  inline void yield();
  void deliver_pending_cancel(lowlevel::Task& task);
  void activate_cancel_status(lowlevel::Task& task, CancelStatus* status);
  [[noreturn]] void throw_cancelled(lowlevel::Task& task);
  inline void checkpoint();
  inline void checkpoint_if_cancelled();
  // checkpoint_if_cancelled()'s cold half: the task is cancelled; checkpoint() throws.
  [[gnu::noinline, gnu::cold]] void deliver_cancel_at_checkpoint();
  void sleep_until(Time deadline);
  // yield()'s step hold (SchedulePolicy::hold_step): parks the running task for the hold the
  // policy asks for, if any; true if it did (the task then counts its schedule point there).
  bool hold_step(lowlevel::Task& task);
  // A DeadlineTimer's expiry for a task parked until a time (sleep_until, hold_step): wakes it.
  static void reschedule_timed(void* owner);
  Time current_effective_deadline();

  // Cross-thread plumbing (RunToken): shared with tokens and worker threads; closed when the
  // run ends.
  const std::shared_ptr<RunTokenState>& token_state() const noexcept { return token_state_; }
  // Starts fn as a task in the system nursery (it inherits the caller's task-locals, or the
  // loop thread's outside a task). Throws RunFinishedError once the system nursery is gone.
  void spawn_system_task(std::function<void()> fn, std::string_view name);
  // A per-run slot for layers above the core (the default thread limiter), keyed by the
  // address of a static; destroyed with the Runner, after every task has exited.
  std::shared_ptr<void>& run_local(const void* key) { return run_locals_[key]; }

  // RunOptions::check_lock_order: the lock tracking slot, or nullptr when the check is off.
  std::unique_ptr<lowlevel::LockTracking>* lock_tracking_slot() noexcept {
    return check_lock_order_ ? &lock_tracking_ : nullptr;
  }

  // The run's signal hub (signal/signal_receiver.h), created on first use.
  SignalHub& signal_hub();

  // Deadlines (CancelScope registers itself while active).
  DeadlineHeap& deadlines() noexcept { return deadlines_; }
  // What the next expiry's prefetch aims by (tests check the frame-layout assumption).
  const WakeupPrefetch& wakeup_prefetch() const noexcept { return wakeup_prefetch_; }

  void wait_all_tasks_blocked(Duration cushion);
  void add_instrument(Instrument& instrument);
  void remove_instrument(Instrument& instrument);
  lowlevel::RunStatistics statistics() const;
  std::string dump_task_tree() const;
  // Every living task (in the tree under the root task, or not run yet), in spawn order.
  std::vector<lowlevel::Task*> living_tasks() const;
  // A nursery's cancel status: where its children run.
  static CancelStatus& status_of(Nursery& nursery) noexcept {
    return nursery.cancel_scope_.status_;
  }
  // Appends the tasks that have not run yet (of `nursery`, or all if null) to `out`, in run
  // queue order: they are on no list but the run queue.
  void not_yet_run(const Nursery* nursery, std::vector<lowlevel::Task*>& out) const;

 private:
  enum class IdlePrimed { kNone, kWaitingForIdle, kAutojump };
  // Where poll() runs: in loop(), or on the stack of a task that stopped at the end of a
  // batch (next_for_direct_switch()).
  enum class PollSite { kLoop, kTaskStack };
  enum class PollResult {
    kNothing,           // no I/O, closure, signal or deadline woke anything
    kWoke,              // I/O readiness or a closure from another thread
    kDeadlinesExpired,  // at least one deadline fired
    kNeedsLoop,         // (kTaskStack only) closures are queued: run the step in loop()
  };

  void start(FunctionRef<void()> main, const std::type_info& main_type);
  void loop();
  // After the loop: throws the run's outcome as run() does.
  void conclude();
  // The run is over: RunTokens are refused from here on, signal handlers restored.
  void close_run() noexcept;
  // One iteration up to its batch: compute the timeout, detect deadlock, poll(), then
  // autojump or wake the wait_all_tasks_blocked waiters. False if there is no batch to run.
  bool advance();
  // advance()'s halves around its poll: how long the iteration may wait (deadlocked: no
  // poll, handle_deadlock() ran), then what an idle wait leads to.
  struct IterationPlan {
    Duration timeout{};
    IdlePrimed idle = IdlePrimed::kNone;
    bool deadlocked = false;
  };
  IterationPlan plan_iteration();
  void after_poll(PollResult polled, IdlePrimed idle);
  // The poll step every iteration runs, wherever it runs: wait for I/O up to `timeout` and
  // dispatch it, run the RunToken closures, hand out signals, expire deadlines.
  inline PollResult poll(Duration timeout, PollSite site);
  bool expire_deadlines();
  void form_batch();
  // form_batch() under a policy other than TrioPolicy.
  void select_and_order_batch();
  // Runs the batch from batch_position_ to its end, slice by slice (guest: up to batch_stop_).
  void run_batch();
  void run_slice();  // up to batch_stop_
  // A long batch runs in slices of lowlevel::kBatchSliceSteps task steps (lowlevel.h). Between
  // two slices the poll step runs again with a zero timeout, and the tasks it woke (parked
  // until then, so none is in the batch's remainder) run next, in the policy's order, ahead
  // of the remainder. Returns false if that poll must run in loop() (PollResult::kNeedsLoop,
  // from a task's stack).
  bool next_slice(PollSite site);
  // The poll between two slices of a batch, then admit_woken() for what it woke; false (nothing
  // admitted) if the poll must run in loop() instead (PollResult::kNeedsLoop).
  bool poll_and_admit_woken(PollSite site);
  // guest_step()'s start when the last step stopped inside a batch (run_batch's next_slice).
  void guest_poll_between_slices();
  // Moves the tasks runq_ gained past `first` (woken by a slice's poll) into the batch, ahead
  // of its remainder, ordered by the policy.
  void admit_woken(std::size_t first);
  bool prepare_to_run(lowlevel::Task& task);
  // `error`: what the task's function threw (or why it could not start).
  void finish(lowlevel::Task& task, std::exception_ptr error);
  // Forced inline, in runner_inline.h.
  inline void suspend(lowlevel::Task& self);
  // Forced inline, in runner_inline.h.
  inline lowlevel::Task* next_for_direct_switch(lowlevel::Task& self);
  // next_for_direct_switch() at the end of a slice or batch: runs the poll step there (and
  // forms the next batch) on the stopping task's stack. False: go back to the loop.
  [[gnu::noinline]] bool poll_on_task_stack(lowlevel::Task& self);
  lowlevel::Task* next_for_instrumented_switch(lowlevel::Task& self);
  void fail_run(std::exception_ptr error) noexcept;
  // A RunToken closure threw: cancel everything, let the run wind down, then fail it.
  void closure_crashed(std::exception_ptr error);
  // Whether a cancellation is due at the task's next cancel point.
  static bool effectively_cancelled(const lowlevel::Task& task) noexcept {
    // (Asked only of a task that has run: the running one, a parked one.)
    const CancelStatus* status = task.run_->cancel_status;
    return status != nullptr && status->effectively_cancelled();
  }
  void handle_deadlock();
  // After every backend wait: hand out the signals that arrived.
  void dispatch_signals() {
    if (signal_hub_ != nullptr && signal_hub_->pending()) signal_hub_->dispatch();
  }
  void install_keyboard_interrupt();
  void keyboard_interrupt();
  std::string deadlock_report() const;
  void dump_task(const lowlevel::Task& task, int depth, std::string& out) const;
  std::exception_ptr make_cancelled(lowlevel::Task& task) const;
  template <class Hook>
  void call_instruments(Hook hook);
  [[noreturn]] static void not_in_run(const char* operation);
  [[noreturn]] static void not_in_task(const char* operation);
  // This thread's current run (constant-initialized: no TLS wrapper on access).
  static inline thread_local Runner* this_thread_ = nullptr;
  static ExecutionContext* task_main(void* task) noexcept;
  static bool guard_lookup(const void* address, OverflowInfo* info) noexcept;

  Clock& clock_;
  Backend& backend_;
  SchedulePolicy& policy_;
  // policy_ if it is the default TrioPolicy (it selects every task, so form_batch() skips
  // select_batch() and calls its order_batch() directly), else nullptr.
  TrioPolicy* const trio_policy_;
  const bool policy_holds_steps_;  // SchedulePolicy::holds_steps(), asked once
  // A guest run: every batch ends back in the loop (the host runs between batches).
  bool guest_ = false;
  IdlePrimed guest_idle_ = IdlePrimed::kNone;  // the plan of the iteration whose wait is out
  // Task steps a guest step may still start (guest_step lowers batch_stop_ to the slice's end).
  static constexpr std::size_t kGuestSliceSteps = 512;
  std::size_t guest_slice_left_ = 0;
  const bool strict_exception_groups_;
  const std::size_t stack_size_default_;
  std::vector<Instrument*> instruments_;

  ExecutionContext loop_context_;
  StackPool& stack_pool_;
  // Invariant: current_ != nullptr iff a task's fiber is running (between the loop's switch
  // into it and its switch back).
  lowlevel::Task* current_ = nullptr;
  lowlevel::Task* root_ = nullptr;
  lowlevel::Task* main_task_ = nullptr;
  Nursery* system_nursery_ = nullptr;
  std::exception_ptr main_error_;
  // The scope around main that SIGINT cancels (null once main exited).
  CancelScope* main_scope_ = nullptr;
  const bool catch_keyboard_interrupt_;
  const bool check_lock_order_;
  const std::string main_name_;  // RunOptions::main_name ("" names main after its type)
  bool keyboard_interrupt_pending_ = false;
  std::exception_ptr root_error_;
  std::uint64_t next_task_id_ = 0;

  // Invariant: every task in runq_ and in batch_[batch_position_..] has state kRunnable and
  // appears once. Tasks woken during a batch go to runq_ and run in a later batch.
  std::vector<lowlevel::Task*> runq_;
  std::vector<lowlevel::Task*> batch_;
  std::size_t batch_position_ = 0;
  // Where run_batch() and the direct switches stop: the end of the batch's current slice
  // (kBatchSliceSteps after its start), or of a guest step's slice.
  // Invariant: batch_position_ <= batch_stop_ <= batch_.size().
  std::size_t batch_stop_ = 0;
  DeadlineHeap deadlines_;
  WakeupPrefetch wakeup_prefetch_;
  // wait_all_tasks_blocked waiters, ordered by (cushion, task id): deterministic.
  std::map<std::pair<Duration, std::uint64_t>, lowlevel::Task*> waiting_for_idle_;
  std::size_t tasks_living_ = 0;

  std::string deadlock_report_;
  int deadlock_rounds_ = 0;
  bool abandoned_ = false;
  bool in_instrument_ = false;        // an instrument hook is running: no blocking allowed
  std::exception_ptr loop_error_;     // the Backend or Clock failed: the run is abandoned
  std::exception_ptr closure_error_;  // the first RunToken closure that threw
  // Exit listeners by task, in registration order (the order they are told in).
  using ExitListeners =
      std::unordered_map<const lowlevel::Task*, std::vector<lowlevel::TaskExitListener*>>;
  ExitListeners exit_listeners_;
  // Nodes of exit_listeners_ no task uses now, kept for the next (see add_exit_listener).
  std::vector<ExitListeners::node_type> spare_exit_listener_nodes_;
  void recycle_exit_listener_node(ExitListeners::node_type node);
  std::shared_ptr<RunTokenState> token_state_;
  std::unique_ptr<SignalHub> signal_hub_;
  // Keys are addresses of statics: lookups only, never iterated.
  std::map<const void*, std::shared_ptr<void>> run_locals_;
  // Invariant: null unless check_lock_order_; created by the sync layer on first use and
  // destroyed after every task has exited (its tasks and locks are gone by then).
  std::unique_ptr<lowlevel::LockTracking> lock_tracking_;
};

}  // namespace trellis::internal
