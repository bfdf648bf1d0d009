// The run loop (core/internal/runner.h): the Runner's tasks, batches, parking, deadlines and
// deadlock handling. Its neighbours: task_allocator.cc (task memory), task_name.cc (task
// names), lowlevel.cc (the public entry points that forward here), and posix/default_run.cc
// (run()'s real clock and backend).
#include "trellis/core/internal/runner.h"
#include "trellis/core/internal/runner_inline.h"

#include <signal.h>
#include <unistd.h>

#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <new>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/internal/task_memory.h"
#include "trellis/core/internal/wakeup_prefetch.h"
#include "trellis/core/task_local.h"

namespace trellis {

namespace internal {

struct CancelledFactory {
  static Cancelled make(CancelSource source) noexcept { return Cancelled(source); }
};

namespace {

const char* current_task_name_for_assert() noexcept {
  Runner* runner = Runner::current();
  if (runner == nullptr || runner->current_task() == nullptr) return nullptr;
  try {
    return runner->current_task()->name().c_str();
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

// ---- construction and the loop ------------------------------------------------------------

Runner::Runner(const RunOptions& options, Clock& clock, Backend& backend, SchedulePolicy& policy)
    : clock_(clock),
      backend_(backend),
      policy_(policy),
      trio_policy_(dynamic_cast<TrioPolicy*>(&policy)),
      policy_holds_steps_(policy.holds_steps()),
      strict_exception_groups_(options.strict_exception_groups),
      stack_size_default_(normalize_stack_size(options.stack_size)),
      stack_pool_(StackPool::for_this_thread()),
      catch_keyboard_interrupt_(options.keyboard_interrupt),
      check_lock_order_(options.check_lock_order),
      main_name_(options.main_name),
      token_state_(std::make_shared<RunTokenState>(backend)) {
  for (Instrument* instrument : options.instruments) {
    if (instrument == nullptr) throw std::invalid_argument("RunOptions::instruments: null");
    if (std::find(instruments_.begin(), instruments_.end(), instrument) == instruments_.end()) {
      instruments_.push_back(instrument);
    }
  }
  if (Instrument* instrument = policy.instrument()) {
    if (std::find(instruments_.begin(), instruments_.end(), instrument) == instruments_.end()) {
      instruments_.push_back(instrument);
    }
  }
  make_thread_context(loop_context_);
}

Runner::~Runner() {
  for (auto& [task, listeners] : exit_listeners_) {
    for (lowlevel::TaskExitListener* listener : listeners) listener->run_ended();
  }
  stack_pool_.trim();
  trim_task_memory();
  // (An abandoned run leaks its tasks, deliberately: see handle_deadlock().)
  if (abandoned_) return;
  TRELLIS_ASSERT(tasks_living_ == 0);
  TRELLIS_ASSERT(runq_.empty());
}

void Runner::add_exit_listener(lowlevel::Task& task, lowlevel::TaskExitListener& listener) {
  if (task.state_ == lowlevel::Task::State::kFinished) {
    throw BrokenResourceError("task " + task.name() + " has already exited");
  }
  auto it = exit_listeners_.find(&task);
  if (it == exit_listeners_.end()) {
    if (spare_exit_listener_nodes_.empty()) {
      it = exit_listeners_.try_emplace(&task).first;
    } else {
      ExitListeners::node_type node = std::move(spare_exit_listener_nodes_.back());
      spare_exit_listener_nodes_.pop_back();
      node.key() = &task;
      it = exit_listeners_.insert(std::move(node)).position;
    }
  }
  it->second.push_back(&listener);
}

void Runner::recycle_exit_listener_node(ExitListeners::node_type node) {
  // A lock taken and released by a new task each time (a task per request) would otherwise
  // allocate a map node and a vector per acquire.
  constexpr std::size_t kSpareNodesMax = 16;
  if (spare_exit_listener_nodes_.size() >= kSpareNodesMax) return;
  node.mapped().clear();  // (keeps its capacity)
  spare_exit_listener_nodes_.push_back(std::move(node));
}

void Runner::remove_exit_listener(lowlevel::Task& task, lowlevel::TaskExitListener& listener) {
  auto it = exit_listeners_.find(&task);
  if (it != exit_listeners_.end()) {
    auto& listeners = it->second;
    auto found = std::find(listeners.begin(), listeners.end(), &listener);
    if (found != listeners.end()) {
      listeners.erase(found);
      if (listeners.empty()) recycle_exit_listener_node(exit_listeners_.extract(it));
      return;
    }
  }
  throw UsageError("remove_task_exit_listener: not registered for task " + task.name());
}

void Runner::forget_exit_listener(lowlevel::TaskExitListener& listener) noexcept {
  for (auto it = exit_listeners_.begin(); it != exit_listeners_.end();) {
    std::erase(it->second, &listener);
    it = it->second.empty() ? exit_listeners_.erase(it) : std::next(it);
  }
}

void Runner::not_in_run(const char* operation) {
  throw UsageError(std::string(operation) + " must be called from inside trellis::run()");
}

void Runner::not_in_task(const char* operation) {
  throw UsageError(std::string(operation) +
                   " must be called from a task (not from an "
                   "instrument or the run loop)");
}

Runner::ThreadBinding::ThreadBinding(Runner& runner) {
  if (this_thread_ != nullptr) throw UsageError("Attempted to call run() from inside a run()");
  this_thread_ = &runner;
}

void Runner::run(FunctionRef<void()> main, const std::type_info& main_type) {
  ThreadBinding binding(*this);
  struct Close {
    Runner& runner;
    ~Close() { runner.close_run(); }
  } close{*this};
  start(main, main_type);
  loop();
  conclude();
}

void Runner::close_run() noexcept {
  // From here on every RunToken call (and every late worker result) is refused.
  token_state_->close();
  // Handlers go back to what they were (every receiver has closed with its task).
  signal_hub_.reset();
}

void Runner::start(FunctionRef<void()> main, const std::type_info& main_type) {
  set_assert_task_name_hook(&current_task_name_for_assert);
  install_stack_overflow_handler(&Runner::guard_lookup);

  clock_.start();
  if (catch_keyboard_interrupt_) install_keyboard_interrupt();
  call_instruments([](Instrument& i) { i.before_run(); });

  // The root task opens the system nursery and starts main in it. main's outcome is kept
  // apart (it is run()'s result); when main exits, the system nursery is cancelled so
  // system tasks wind down.
  auto root_body = [this, main, &main_type] {
    open_nursery([&](Nursery& system) {
      system_nursery_ = &system;
      // main runs inside a scope of its own: the one SIGINT cancels.
      auto main_body = [this, main] {
        CancelScope scope;
        main_scope_ = &scope;
        struct Forget {
          CancelScope*& scope;
          ~Forget() { scope = nullptr; }
        } forget{main_scope_};
        scope.run([&] { main(); });
      };
      auto* task = new TaskWithBody<decltype(main_body), TypeName>(std::move(main_body),
                                                                   TypeName{&main_type});
      main_task_ = task;
      spawn(task, &system, SpawnOptions{.name = main_name_}, nullptr);
    });
  };
  auto* root = new TaskWithBody<decltype(root_body), TypeName>(std::move(root_body), TypeName{});
  root_ = root;
  spawn(root, nullptr, SpawnOptions{"<init>", 0}, nullptr);
}

void Runner::conclude() {
  if (loop_error_ != nullptr) {
    throw InternalError("the run loop failed (" + std::string(backend_.name()) +
                        " backend): " + describe_exception(loop_error_));
  }
  call_instruments([](Instrument& i) { i.after_run(); });
  if (closure_error_ != nullptr) {
    throw InternalError("a RunToken closure raised: " + describe_exception(closure_error_));
  }

  // As Trio: a SIGINT during the run wins over whatever main did.
  if (keyboard_interrupt_pending_) throw KeyboardInterrupt();
  if (!deadlock_report_.empty()) throw DeadlockError(deadlock_report_);
  if (root_error_ != nullptr) {
    throw InternalError("a system task crashed: " + describe_exception(root_error_));
  }
  if (main_error_ != nullptr) std::rethrow_exception(main_error_);
}

void Runner::start_guest(FunctionRef<void()> main, const std::type_info& main_type) {
  TRELLIS_ASSERT(this_thread_ == this);
  guest_ = true;
  start(main, main_type);
}

Runner::GuestStep Runner::guest_step(bool waited) {
  TRELLIS_ASSERT(this_thread_ == this && guest_);
  // Each step runs at most kGuestSliceSteps task steps, across as many batches as fit (a
  // batch too big for one slice goes on in the next step): the host's own work runs between
  // steps, however many tasks are runnable, and small batches cost no extra host callbacks.
  guest_slice_left_ = kGuestSliceSteps;
  bool ready = !waited;  // a step that waited finishes that iteration first
  if (waited) {
    try {
      after_poll(poll(Duration::zero(), PollSite::kLoop), guest_idle_);
      ready = true;
    } catch (...) {
      fail_run(std::current_exception());
    }
  }
  if (batch_position_ > 0 && batch_position_ < batch_.size()) {
    TRELLIS_ASSERT(!waited);  // a wait is only asked for between iterations
    guest_poll_between_slices();
  }
  for (;;) {
    if (abandoned_ || root_ == nullptr) return {.done = true};
    if (batch_position_ < batch_.size()) {
      // This iteration's batch, or what the last slice left of it, up to the slice's end.
      const std::size_t start = batch_position_;
      batch_stop_ = std::min(batch_.size(), start + guest_slice_left_);
      run_batch();
      guest_slice_left_ -= batch_position_ - start;
      if (abandoned_ || root_ == nullptr) return {.done = true};
      if (batch_position_ < batch_.size()) return {};  // the slice is used up
      ready = false;
      continue;
    }
    if (ready && !runq_.empty()) {
      if (guest_slice_left_ == 0) return {};
      form_batch();
      continue;
    }
    ready = false;
    try {
      const IterationPlan plan = plan_iteration();
      if (plan.deadlocked) continue;
      if (plan.timeout > Duration::zero()) {
        guest_idle_ = plan.idle;
        return {.wait = plan.timeout};
      }
      after_poll(poll(Duration::zero(), PollSite::kLoop), plan.idle);
      ready = true;
    } catch (...) {
      fail_run(std::current_exception());
    }
  }
}

void Runner::guest_poll_between_slices() {
  // The last step stopped inside a batch: the poll a run() makes between two slices
  // (next_slice()) runs now, and the tasks it woke go ahead of the batch's remainder, so a
  // due timer or ready socket waits one slice here too, not the rest of the batch.
  TRELLIS_ASSERT(batch_position_ < batch_.size());
  try {
    poll_and_admit_woken(PollSite::kLoop);
  } catch (...) {
    fail_run(std::current_exception());
  }
}

void Runner::finish_guest() {
  TRELLIS_ASSERT(this_thread_ == this && guest_);
  struct Close {
    Runner& runner;
    ~Close() { runner.close_run(); }
  } close{*this};
  conclude();
}

void Runner::loop() {
  // This while loop *is* the event loop (Trio's unrolled_run): one iteration per batch.
  // (A task that stops at the end of a batch runs the next iteration's poll step itself,
  // in next_for_direct_switch(), when the run queue is non-empty: see poll().)
  while (root_ != nullptr) {
    bool ready = false;
    try {
      ready = advance();
    } catch (...) {
      fail_run(std::current_exception());
    }
    if (abandoned_) return;
    // (An iteration that only moved the clock, as an autojump does, has no batch to run.)
    if (!ready || runq_.empty()) continue;
    form_batch();
    run_batch();
    if (abandoned_) return;
  }
}

// Forced inline into its two callers: the direct switch runs it at the end of every batch.
[[gnu::always_inline]] inline Runner::PollResult Runner::poll(Duration timeout, PollSite site) {
  // Closures from RunTokens run outside every task, on the loop's own stack (a closure is
  // user code: it gets the loop's stack and a run with no current task). A task's stack
  // hands the step back to the loop while any are queued, or tasks that never block would
  // starve them.
  if (site == PollSite::kTaskStack) {
    TRELLIS_ASSERT(timeout == Duration::zero());  // a runnable task is waiting
    if (!token_state_->empty()) return PollResult::kNeedsLoop;
  }
  TRELLIS_ASSERT(timeout >= Duration::zero());
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.before_io_wait(timeout); });
  bool woke = backend_.wait_and_dispatch(timeout);
  try {
    if (token_state_->drain() > 0) woke = true;
  } catch (...) {
    // The closures queued after it are still queued: they run in the next poll.
    closure_crashed(std::current_exception());
    woke = true;
  }
  dispatch_signals();
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.after_io_wait(timeout); });
  if (expire_deadlines()) return PollResult::kDeadlinesExpired;
  return woke ? PollResult::kWoke : PollResult::kNothing;
}

bool Runner::advance() {
  const IterationPlan plan = plan_iteration();
  if (plan.deadlocked) return false;
  const PollResult polled = poll(plan.timeout, PollSite::kLoop);
  TRELLIS_ASSERT(polled != PollResult::kNeedsLoop);
  after_poll(polled, plan.idle);
  return true;
}

Runner::IterationPlan Runner::plan_iteration() {
  // How long the Backend may block: not at all if a task is runnable, else until the next
  // deadline (converted by the clock to real time).
  IterationPlan plan;
  Duration& timeout = plan.timeout;
  if (runq_.empty()) {
    timeout = deadlines_.empty()
                  ? Duration::max()
                  : std::max(Duration::zero(), clock_.sleep_time_until(deadlines_.top_deadline()));
  }
  // A task in wait_all_tasks_blocked suppresses autojump (Trio: the `else` is deliberate).
  if (!waiting_for_idle_.empty()) {
    const Duration cushion = waiting_for_idle_.begin()->first.first;
    if (cushion < timeout) {
      timeout = cushion;
      plan.idle = IdlePrimed::kWaitingForIdle;
    }
  } else if (const Duration threshold = clock_.autojump_threshold();
             threshold < timeout && !deadlines_.empty()) {
    // (With no deadline there is nothing to jump to: an idle run is then deadlocked, not
    // waiting for the clock.)
    timeout = threshold;
    plan.idle = IdlePrimed::kAutojump;
  }
  // Closures from RunTokens are due now (poll() runs them).
  if (!token_state_->empty()) timeout = Duration::zero();
  // So are signals that arrived (they may be all that keeps the run from deadlock).
  if (signal_hub_ != nullptr && signal_hub_->pending()) timeout = Duration::zero();
  if (runq_.empty() && plan.idle == IdlePrimed::kNone && timeout == Duration::max() &&
      !backend_.has_pending_sources() && (signal_hub_ == nullptr || !signal_hub_->has_waiters())) {
    handle_deadlock();
    plan.deadlocked = true;
  }
  return plan;
}

void Runner::after_poll(PollResult polled, IdlePrimed idle) {
  if (polled == PollResult::kDeadlinesExpired) idle = IdlePrimed::kNone;
  if (idle != IdlePrimed::kNone && runq_.empty() && polled == PollResult::kNothing) {
    if (idle == IdlePrimed::kWaitingForIdle && !waiting_for_idle_.empty()) {
      const Duration cushion = waiting_for_idle_.begin()->first.first;
      while (!waiting_for_idle_.empty() && waiting_for_idle_.begin()->first.first == cushion) {
        lowlevel::Task* task = waiting_for_idle_.begin()->second;
        waiting_for_idle_.erase(waiting_for_idle_.begin());
        reschedule(*task);
      }
    } else if (idle == IdlePrimed::kAutojump && !deadlines_.empty()) {
      // The deadline fires in the next iteration, whose timeout is then zero.
      clock_.jump_to(deadlines_.top_deadline());
    }
  }
}

internal::SignalHub& Runner::signal_hub() {
  if (signal_hub_ == nullptr) {
    signal_hub_ = std::make_unique<SignalHub>(backend_, [this](int signo) {
      if (signo == SIGINT) keyboard_interrupt();
    });
  }
  return *signal_hub_;
}

void Runner::install_keyboard_interrupt() {
  // Trio's rule: only the main thread, and never over a handler the program installed.
  if (::gettid() != ::getpid()) return;
  // A backend with signals of its own (the simulator's) owns them: the real process's
  // dispositions are never touched, and a real Ctrl-C keeps its default action.
  if (backend_.signals() != nullptr) return;
  struct sigaction current {};
  if (::sigaction(SIGINT, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
  try {
    signal_hub().route(SIGINT);
  } catch (const UsageError&) {
    // Another run on this process catches SIGINT: it keeps it.
  }
}

void Runner::keyboard_interrupt() {
  keyboard_interrupt_pending_ = true;
  if (main_scope_ != nullptr) main_scope_->cancel_with(CancelSource::kKeyboardInterrupt);
}

bool Runner::expire_deadlines() {
  if (deadlines_.empty()) return false;
  const Time now = clock_.now();
  bool expired = false;
  while (!deadlines_.empty() && deadlines_.top_deadline() <= now) {
    deadlines_.pop_expiry()();
    expired = true;
  }
  // Start loading what the next expiry will touch while the tasks woken now run: with many
  // sleepers it is cold memory.
  if (expired && !deadlines_.empty()) {
    wakeup_prefetch_.prefetch_next(deadlines_.top_owner(), deadlines_.top_timer());
  }
  return expired;
}

void Runner::form_batch() {
  TRELLIS_ASSERT(batch_position_ == batch_.size());
  batch_.clear();
  batch_.swap(runq_);
  batch_position_ = 0;
  if (batch_.size() > 1) {
    if (trio_policy_ != nullptr) {
      // The default policy selects every task: no select_batch(), and a direct call (final).
      trio_policy_->order_batch(std::span<lowlevel::Task*>(batch_));
    } else {
      select_and_order_batch();
    }
  }
  batch_stop_ = guest_ ? batch_.size() : std::min(batch_.size(), lowlevel::kBatchSliceSteps);
}

void Runner::select_and_order_batch() {
  // The policy may hold tasks back: they go back to the run queue, ahead of every task
  // woken during this batch, and stay runnable.
  const std::size_t selected = policy_.select_batch(std::span<lowlevel::Task*>(batch_));
  TRELLIS_ASSERT(selected >= 1 && selected <= batch_.size());
  if (selected < batch_.size()) {
    TRELLIS_ASSERT(runq_.empty());
    runq_.assign(batch_.begin() + static_cast<std::ptrdiff_t>(selected), batch_.end());
    batch_.resize(selected);
  }
  if (batch_.size() > 1) policy_.order_batch(std::span<lowlevel::Task*>(batch_));
}

bool Runner::next_slice(PollSite site) {
  TRELLIS_ASSERT(!guest_);
  TRELLIS_ASSERT(batch_position_ == batch_stop_ && batch_stop_ < batch_.size());
  if (!poll_and_admit_woken(site)) return false;
  batch_stop_ = std::min(batch_.size(), batch_position_ + lowlevel::kBatchSliceSteps);
  TRELLIS_ASSERT(batch_position_ < batch_stop_);
  return true;
}

bool Runner::poll_and_admit_woken(PollSite site) {
  const std::size_t first_woken = runq_.size();
  if (poll(Duration::zero(), site) == PollResult::kNeedsLoop) return false;
  admit_woken(first_woken);
  return true;
}

void Runner::admit_woken(std::size_t first) {
  TRELLIS_ASSERT(first <= runq_.size());
  const std::size_t count = runq_.size() - first;
  if (count == 0) return;
  const auto woken_begin = runq_.begin() + static_cast<std::ptrdiff_t>(first);
  if (count <= batch_position_) {
    // The slots of steps already run take them: no move of the remainder.
    batch_position_ -= count;
    std::copy(woken_begin, runq_.end(),
              batch_.begin() + static_cast<std::ptrdiff_t>(batch_position_));
  } else {
    batch_.insert(batch_.begin() + static_cast<std::ptrdiff_t>(batch_position_), woken_begin,
                  runq_.end());
  }
  runq_.resize(first);
  if (count > 1) {
    policy_.order_batch(std::span<lowlevel::Task*>(batch_.data() + batch_position_, count));
  }
}

void Runner::run_batch() {
  for (;;) {
    run_slice();
    if (abandoned_ || guest_ || batch_position_ == batch_.size()) return;
    bool next = false;
    try {
      next = next_slice(PollSite::kLoop);
    } catch (...) {
      fail_run(std::current_exception());
      return;
    }
    TRELLIS_ASSERT(next);
  }
}

namespace {
// How many tasks ahead run_slice() prefetches.
constexpr std::size_t kTaskPrefetchAhead = 4;
}  // namespace

void Runner::run_slice() {
  while (batch_position_ < batch_stop_) {
    // A few tasks ahead, start loading the task: in a storm of new tasks, each is cold memory
    // written at its spawn (its first step reads it whole: its stack size, its body).
    if (batch_position_ + kTaskPrefetchAhead < batch_stop_) {
      const auto* ahead =
          reinterpret_cast<const char*>(batch_[batch_position_ + kTaskPrefetchAhead]);
      __builtin_prefetch(ahead);
      __builtin_prefetch(ahead + 64);
    }
    lowlevel::Task& task = *batch_[batch_position_++];
    TRELLIS_ASSERT(task.state_ == lowlevel::Task::State::kRunnable);
    TRELLIS_ASSERT(current_ == nullptr);
    if (!prepare_to_run(task)) continue;
    current_ = &task;  // step hooks run "as" the stepping task, as in Trio
    if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.before_task_step(task); });
    task.state_ = lowlevel::Task::State::kRunning;
    switch_context(loop_context_, task.run_->context);
    // Back in the loop from whichever task stopped last: with direct switches between
    // tasks, that may be a later task of this batch (or of a batch formed meanwhile).
    TRELLIS_ASSERT(current_ != nullptr);
    lowlevel::Task& last = *current_;
    if (last.state_ == lowlevel::Task::State::kFinished) {
      current_ = nullptr;
      finish(last, std::move(last.run_->error));
    } else {
      TRELLIS_ASSERT(last.state_ == lowlevel::Task::State::kRunnable ||
                     last.state_ == lowlevel::Task::State::kParked);
      if (!instruments_.empty()) {
        call_instruments([&](Instrument& i) { i.after_task_step(last); });
      }
      current_ = nullptr;
    }
    if (abandoned_) return;
  }
}

bool Runner::prepare_to_run(lowlevel::Task& task) {
  if (task.run_ != nullptr) return true;
  Stack stack;
  try {
    const std::uint32_t pages = task.stack_pages();
    stack = stack_pool_.acquire(pages != 0 ? std::size_t{pages} * kStackPageBytes
                                           : stack_size_default_);
  } catch (...) {
    // The task cannot start: it fails as if its function had thrown.
    task.state_ = lowlevel::Task::State::kFinished;
    finish(task, std::current_exception());
    return false;
  }
  // The task's run-time state takes the top of its stack; its frames start below it.
  static_assert(kTaskRunBytes % alignof(std::max_align_t) == 0);
  TRELLIS_ASSERT(stack.usable_size() > kTaskRunBytes);
  // (Default-initialized: every member has its initializer, so no pass zeroes the block
  // first, padding included.)
  TaskRun* run = new (stack.top() - kTaskRunBytes) TaskRun;
  run->stack = stack;
  run->task = &task;
  run->locals = task.run_.take_pending_locals();
  task.run_.set(run);
  // From its first step the task is on its nursery's list and its cancel status's.
  if (Nursery* nursery = task.parent_nursery_) {
    TRELLIS_ASSERT(nursery->pending_children_ > 0);
    --nursery->pending_children_;
    nursery->children_.push_back(*run);
    run->cancel_status = &nursery->cancel_scope_.status_;
    run->cancel_status->add_task(*run);
  }
  const Stack frames{stack.mapping, stack.mapping_size - kTaskRunBytes, stack.guard_size};
  make_fiber_context(run->context, frames, &Runner::task_main, &task, loop_context_);
  return true;
}

ExecutionContext* Runner::task_main(void* argument) noexcept {
  auto* task = static_cast<lowlevel::Task*>(argument);
  try {
    task->invoke();
  } catch (...) {
    task->run_->error = std::current_exception();
  }
  task->state_ = lowlevel::Task::State::kFinished;
  // A finished task always returns to the loop, which releases its stack.
  return &this_thread_->loop_context_;
}

void Runner::closure_crashed(std::exception_ptr error) {
  TRELLIS_ASSERT(error != nullptr);
  TRELLIS_ASSERT(current_ == nullptr);  // closures run outside every task
  // As Trio (test_TrioToken_run_sync_soon_crashes): the run is crashed, not abandoned. Its
  // tasks are cancelled and unwind as usual, later closures still run, and run() then
  // throws InternalError naming the first closure's exception.
  if (closure_error_ == nullptr) closure_error_ = std::move(error);
  if (system_nursery_ != nullptr)
    system_nursery_->cancel_scope().cancel_with(CancelSource::kShutdown);
}

void Runner::fail_run(std::exception_ptr error) noexcept {
  loop_error_ = std::move(error);
  abandoned_ = true;
  root_ = nullptr;
}

void Runner::finish(lowlevel::Task& task, std::exception_ptr error) {
  TRELLIS_ASSERT(task.state_ == lowlevel::Task::State::kFinished);
  // The task's TaskRun (null if it never ran) stays until its nursery has let it go; the task
  // shows no run state from here on.
  TaskRun* const run = task.run_.get();
  if (run != nullptr) {
    TRELLIS_ASSERT(run->child_nurseries.empty());
    activate_cancel_status(task, nullptr);
    task.run_.set(nullptr);
  } else {
    task.discard_body();
  }
  --tasks_living_;
  if (!exit_listeners_.empty()) {
    if (auto it = exit_listeners_.find(&task); it != exit_listeners_.end()) {
      ExitListeners::node_type node = exit_listeners_.extract(it);
      for (lowlevel::TaskExitListener* listener : node.mapped()) listener->task_exited(task);
      recycle_exit_listener_node(std::move(node));
    }
  }
  if (&task == main_task_) {
    main_error_ = std::move(error);
    error = nullptr;
    main_task_ = nullptr;
    system_nursery_->cancel_scope().cancel_with(CancelSource::kShutdown);
  }
  if (!instruments_.empty()) {
    current_ = &task;
    call_instruments([&](Instrument& i) { i.task_exited(task); });
    call_instruments([&](Instrument& i) { i.after_task_step(task); });
    current_ = nullptr;
  }
  if (task.parent_nursery_ != nullptr) {
    task.parent_nursery_->child_finished(task, run, std::move(error));
  } else {
    TRELLIS_ASSERT(&task == root_);
    root_error_ = std::move(error);
    root_ = nullptr;
    system_nursery_ = nullptr;
  }
  if (run != nullptr) {
    destroy_fiber_context(run->context);
    const Stack stack = run->stack;
    run->~TaskRun();
    stack_pool_.release(stack);
  }
  delete &task;
}

// ---- switching, parking, rescheduling -----------------------------------------------------

void Runner::spawn_system_task(std::function<void()> fn, std::string_view name) {
  if (system_nursery_ == nullptr || system_nursery_->closed()) {
    throw RunFinishedError("spawn_system_task: the run is finishing or has exited");
  }
  system_nursery_->start_soon(SpawnOptions{std::string(name), 0}, std::move(fn));
}

void Runner::spawn(lowlevel::Task* task, Nursery* nursery, const SpawnOptions& options,
                   Nursery* eventual_parent) {
  TRELLIS_ASSERT(task != nullptr);
  TRELLIS_ASSERT(task->state_ == lowlevel::Task::State::kNew);
  // Exploration: task ids are numbered in spawn order, so spawns are ordered among themselves.
  lowlevel::ObjectId numbering = lowlevel::kTaskNumberingObject;
  lowlevel::record_access(numbering, lowlevel::Access::kWrite);
  // (Task::id_ has 48 bits: at a million spawns a second, nine years of them.)
  TRELLIS_ASSERT(next_task_id_ < (std::uint64_t{1} << 48));
  task->id_ = next_task_id_++;
  if (!options.name.empty()) task->extras().name = options.name;
  if (options.stack_size != 0) {
    static_assert(kStackSizeMax / kStackPageBytes <= UINT32_MAX);
    task->extras().stack_pages =
        static_cast<std::uint32_t>(normalize_stack_size(options.stack_size) / kStackPageBytes);
  }
  task->parent_nursery_ = nursery;
  if (eventual_parent != nullptr) {
    Nursery** slot = task->eventual_parent_slot();
    TRELLIS_ASSERT(slot != nullptr);
    *slot = eventual_parent;
  }
  // contextvars semantics: a task starts with its spawner's task-local values (the root
  // task with those of the thread that called run()).
  task->run_.set_pending_locals(current_ != nullptr ? current_->run_->locals
                                                    : task_local_thread_context());
  ++tasks_living_;
  // Until its first step the task is on no list (prepare_to_run() puts it on its nursery's
  // and its cancel status's): its nursery counts it, and the run queue holds it.
  if (nursery != nullptr) ++nursery->pending_children_;
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.task_spawned(*task); });
  task->state_ = lowlevel::Task::State::kRunnable;
  runq_.push_back(task);
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.task_scheduled(*task); });
}

bool Runner::poll_on_task_stack(lowlevel::Task& self) {
  // (A guest run goes back to the loop at the end of its step's part of a batch, and from
  // there to its host.)
  if (guest_) return false;
  const bool batch_done = batch_stop_ == batch_.size();
  if (batch_done && runq_.empty()) return false;
  current_ = nullptr;
  bool ready = false;
  try {
    // The end of a slice runs the poll between slices that run_batch() runs; the end of
    // the batch runs the next iteration's poll and forms its batch.
    ready = batch_done ? poll(Duration::zero(), PollSite::kTaskStack) != PollResult::kNeedsLoop
                       : next_slice(PollSite::kTaskStack);
  } catch (...) {
    fail_run(std::current_exception());
  }
  current_ = &self;
  if (!ready) return false;
  if (batch_done) {
    TRELLIS_ASSERT(!runq_.empty());
    form_batch();
  }
  return true;
}

lowlevel::Task* Runner::next_for_instrumented_switch(lowlevel::Task& self) {
  // With instruments (a simulation's trace, always) a task still switches straight to the
  // next task of its batch, calling the step hooks the loop would have called between the
  // two steps, in the same order: after_task_step(self), before_task_step(next), each "as"
  // its task. (The hooks then run on the task's stack rather than the loop's.) At the end
  // of a batch it goes back to the loop, which calls the I/O-wait hooks around its wait.
  if (batch_position_ == batch_stop_) return nullptr;
  lowlevel::Task* next = batch_[batch_position_];
  TRELLIS_ASSERT(next->state_ == lowlevel::Task::State::kRunnable);
  if (next->run_ == nullptr) return nullptr;
  ++batch_position_;
  call_instruments([&](Instrument& i) { i.after_task_step(self); });
  current_ = next;
  call_instruments([&](Instrument& i) { i.before_task_step(*next); });
  current_ = &self;
  return next;
}

void Runner::reschedule(lowlevel::Task& task, std::exception_ptr error) {
  // (resume_error is null while a task is parked: park() clears it on every wake-up.)
  task.run_->resume_error = std::move(error);  // a parked task has run
  reschedule(task);
}

std::exception_ptr Runner::make_cancelled(lowlevel::Task& task) const {
  CancelSource source = CancelSource::kUnknown;
  if (deadlock_rounds_ > 0) {
    source = CancelSource::kDeadlock;
  } else if (const CancelStatus* status = task.cancel_status()) {
    if (const CancelScope* scope = status->cancelling_scope()) {
      source = scope->cancel_source_;
    }
  }
  return std::make_exception_ptr(CancelledFactory::make(source));
}

void Runner::throw_cancelled(lowlevel::Task& task) {
  std::rethrow_exception(make_cancelled(task));
}

void Runner::deliver_pending_cancel(lowlevel::Task& task) {
  if (task.state_ != lowlevel::Task::State::kParked || task.run_->abort_fn == nullptr) return;
  if (!effectively_cancelled(task)) return;
  lowlevel::AbortFn* abort = std::exchange(task.run_->abort_fn, nullptr);
  std::exception_ptr cancelled = make_cancelled(task);
  if ((*abort)(cancelled) == lowlevel::Abort::kSucceeded) reschedule(task, std::move(cancelled));
}

void Runner::activate_cancel_status(lowlevel::Task& task, CancelStatus* status) {
  // Only a task that has run is on its status's list (or is moved between statuses).
  TaskRun& run = *task.run_;
  if (run.cancel_status != nullptr) run.cancel_status->remove_task(run);
  run.cancel_status = status;
  if (status != nullptr) {
    status->add_task(run);
    if (status->effectively_cancelled()) deliver_pending_cancel(task);
  }
}

void Runner::sleep_until(Time deadline) {
  // Trio's sleep_until is move_on_at(deadline): sleep_forever(). Same semantics here, but
  // an ordinary wake-up is a plain reschedule by a timer, not a Cancelled thrown and caught.
  lowlevel::Task& task = require_task("sleep_until()");
  if (deadline <= clock_.task_now()) {
    checkpoint();
    return;
  }
  ++task.run_->cancel_points;
  DeadlineTimer timer{DeadlineTimer::kNotRegistered, &Runner::reschedule_timed, &task};
  deadlines_.push(timer, clock_.loop_time_of(deadline));  // the heap is in loop time
  task.run_->sleep_deadline = deadline;
  park(
      [&](std::exception_ptr) {
        deadlines_.remove(timer);
        return lowlevel::Abort::kSucceeded;
      },
      "sleep");
  TRELLIS_ASSERT(!deadlines_.contains(timer));
  // Where this wake-up found the timer, relative to the registers the task saved when it
  // switched out (still in its context): the next expiry's prefetch aims by it.
  wakeup_prefetch_.learn(&timer, task.run_->context.fctx);
}

void Runner::deliver_cancel_at_checkpoint() {
  checkpoint();
  TRELLIS_ASSERT(false && "checkpoint() in a cancelled scope returned");
}

Time Runner::current_effective_deadline() {
  lowlevel::Task& task = require_task("current_effective_deadline()");
  const CancelStatus* status = task.run_->cancel_status;
  return status == nullptr ? kNoDeadline : status->effective_deadline();
}

void Runner::reschedule_timed(void* owner) {
  auto& task = *static_cast<lowlevel::Task*>(owner);
  // (Timers fire inside the run, on its thread.)
  this_thread_->reschedule(task);
}

bool Runner::hold_step(lowlevel::Task& task) {
  TRELLIS_ASSERT(policy_holds_steps_);
  TRELLIS_ASSERT(&task == current_ && task.state_ == lowlevel::Task::State::kRunning);
  const Duration hold = policy_.hold_step(task);
  if (hold <= Duration::zero()) return false;
  const Time until = saturating_add(clock_.now(), hold);
  DeadlineTimer timer{DeadlineTimer::kNotRegistered, &Runner::reschedule_timed, &task};
  deadlines_.push(timer, until);
  task.run_->sleep_deadline = until;
  // Not abortable: the step's CPU time is spent whatever happens meanwhile; a cancellation
  // reaches the task at its checkpoint, right after.
  park([](std::exception_ptr) { return lowlevel::Abort::kFailed; }, "CPU time");
  TRELLIS_ASSERT(!deadlines_.contains(timer));
  return true;
}

// ---- deadlock -----------------------------------------------------------------------------

void Runner::handle_deadlock() {
  if (deadlock_report_.empty()) deadlock_report_ = deadlock_report();
  ++deadlock_rounds_;
  if (deadlock_rounds_ > kDeadlockTeardownRoundsMax) {
    // The tasks keep blocking in their cleanup: give up on unwinding them. Their stacks and
    // the objects on them are leaked, deliberately: destroying a suspended fiber's frames is
    // not possible.
    std::fprintf(stderr,
                 "trellis: %zu task(s) could not be unwound after a deadlock and were "
                 "abandoned\n",
                 tasks_living_);
    abandoned_ = true;
    root_ = nullptr;
    return;
  }
  // Round 1 cancels everything through the system nursery (scopes catch their own
  // Cancelled as usual); every round then forces the tasks that are still parked (behind a
  // shield) out of their waits.
  if (deadlock_rounds_ == 1 && system_nursery_ != nullptr) {
    system_nursery_->cancel_scope().cancel_with(CancelSource::kDeadlock);
  }
  std::vector<lowlevel::Task*> parked;
  for (lowlevel::Task* task : living_tasks()) {
    if (task->state_ == lowlevel::Task::State::kParked && task->run_->abort_fn != nullptr) {
      parked.push_back(task);
    }
  }
  for (lowlevel::Task* task : parked) {
    if (task->state_ != lowlevel::Task::State::kParked || task->run_->abort_fn == nullptr) continue;
    lowlevel::AbortFn* abort = std::exchange(task->run_->abort_fn, nullptr);
    std::exception_ptr cancelled =
        std::make_exception_ptr(CancelledFactory::make(CancelSource::kDeadlock));
    if ((*abort)(cancelled) == lowlevel::Abort::kSucceeded) reschedule(*task, cancelled);
  }
}

std::string Runner::deadlock_report() const {
  std::string report =
      "trellis: deadlock: no task can run and nothing can ever wake one (no deadline the clock "
      "will reach";
  report += clock_.advances_on_its_own() ? "" : " - the clock does not advance on its own";
  report += ", no I/O registration, no cross-thread call). Blocked tasks:";
  for (const lowlevel::Task* living : living_tasks()) {
    const lowlevel::Task& task = *living;
    if (task.state_ != lowlevel::Task::State::kParked) continue;
    report += "\n  - task '" + task.name() + "' (#" + std::to_string(task.id_) + "): waiting on " +
              std::string(task.waiting_on().empty() ? "?" : task.waiting_on());
    if (lock_tracking_ != nullptr) report += lock_tracking_->describe_wait(task);
    if (const CancelStatus* status = task.cancel_status()) {
      Time deadline = status->effective_deadline();
      if (task.waiting_on() == "sleep") deadline = std::min(deadline, task.run_->sleep_deadline);
      if (deadline != kNoDeadline && deadline != Time::min()) {
        report += " (deadline at t=" + std::to_string(deadline.time_since_epoch().count()) + "ns)";
      }
    }
  }
  report += "\nTask tree:\n" + dump_task_tree();
  return report;
}

// ---- introspection ------------------------------------------------------------------------

}  // namespace internal

internal::CancelStatus* lowlevel::Task::cancel_status() const noexcept {
  if (const internal::TaskRun* run = run_.get()) return run->cancel_status;
  // A task that has exited has none (as from activate_cancel_status(task, nullptr)).
  if (state_ == State::kFinished || parent_nursery_ == nullptr) return nullptr;
  return &internal::Runner::status_of(*parent_nursery_);
}

const std::vector<Nursery*>& lowlevel::Task::child_nurseries() const noexcept {
  // A task that has not run yet has opened none.
  static const std::vector<Nursery*> kNone;
  return run_ != nullptr ? run_->child_nurseries : kNone;
}

namespace internal {

void Runner::dump_task(const lowlevel::Task& task, int depth, std::string& out) const {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  out += task.name() + " #" + std::to_string(task.id_);
  switch (task.state_) {
    case lowlevel::Task::State::kRunning:
      out += " [running]";
      break;
    case lowlevel::Task::State::kRunnable:
    case lowlevel::Task::State::kNew:
      out += " [runnable]";
      break;
    case lowlevel::Task::State::kParked:
      out += " [waiting on " + std::string(task.waiting_on()) + "]";
      break;
    case lowlevel::Task::State::kFinished:
      out += " [finished]";
      break;
  }
  out += '\n';
  for (Nursery* nursery : task.child_nurseries()) {
    out.append(static_cast<std::size_t>(depth + 1) * 2, ' ');
    out += "nursery (" + std::to_string(nursery->child_count()) + " children)\n";
    for (lowlevel::Task* child : nursery->child_tasks()) dump_task(*child, depth + 2, out);
  }
}

std::vector<lowlevel::Task*> Runner::living_tasks() const {
  std::vector<lowlevel::Task*> tasks;
  tasks.reserve(tasks_living_);
  std::vector<lowlevel::Task*> pending;
  if (root_ != nullptr) pending.push_back(root_);
  while (!pending.empty()) {
    lowlevel::Task* task = pending.back();
    pending.pop_back();
    tasks.push_back(task);
    for (Nursery* nursery : task->child_nurseries()) {
      for (TaskRun& child : nursery->children_) pending.push_back(child.task);
    }
  }
  // Tasks that have not run yet are on no nursery's list: they are in the run queue.
  not_yet_run(nullptr, tasks);
  std::sort(tasks.begin(), tasks.end(),
            [](const lowlevel::Task* a, const lowlevel::Task* b) { return a->id_ < b->id_; });
  return tasks;
}

void Runner::not_yet_run(const Nursery* nursery, std::vector<lowlevel::Task*>& out) const {
  const auto add = [&](lowlevel::Task* task) {
    if (task->run_ == nullptr && (nursery == nullptr || task->parent_nursery_ == nursery)) {
      out.push_back(task);
    }
  };
  for (std::size_t i = batch_position_; i < batch_.size(); ++i) add(batch_[i]);
  for (lowlevel::Task* task : runq_) add(task);
}

std::string Runner::dump_task_tree() const {
  std::string out;
  if (root_ != nullptr) dump_task(*root_, 0, out);
  return out;
}

lowlevel::RunStatistics Runner::statistics() const {
  lowlevel::RunStatistics stats;
  stats.tasks_living = tasks_living_;
  stats.tasks_runnable = runq_.size();
  stats.deadlines_pending = deadlines_.size();
  if (!deadlines_.empty())
    stats.time_to_next_deadline = saturating_sub(deadlines_.top_deadline(), clock_.now());
  return stats;
}

void Runner::add_instrument(Instrument& instrument) {
  if (std::find(instruments_.begin(), instruments_.end(), &instrument) == instruments_.end()) {
    instruments_.push_back(&instrument);
  }
}

void Runner::remove_instrument(Instrument& instrument) {
  auto it = std::find(instruments_.begin(), instruments_.end(), &instrument);
  if (it == instruments_.end()) {
    throw std::invalid_argument("remove_instrument: this instrument is not installed");
  }
  instruments_.erase(it);
}

void Runner::wait_all_tasks_blocked(Duration cushion) {
  if (cushion < Duration::zero()) {
    throw std::invalid_argument("wait_all_tasks_blocked: cushion must be >= 0");
  }
  lowlevel::Task& task = require_task("wait_all_tasks_blocked()");
  const auto key = std::make_pair(cushion, std::uint64_t{task.id_});
  waiting_for_idle_.emplace(key, &task);
  park(
      [&](std::exception_ptr) {
        waiting_for_idle_.erase(key);
        return lowlevel::Abort::kSucceeded;
      },
      "wait_all_tasks_blocked");
}

bool Runner::guard_lookup(const void* address, OverflowInfo* info) noexcept {
  Runner* runner = Runner::current();
  if (runner == nullptr || runner->current_ == nullptr) return false;
  const lowlevel::Task& task = *runner->current_;
  const char* fault = static_cast<const char*>(address);
  // A frame larger than the guard page may jump past it; accept faults up to 64 KiB below
  // the usable stack too (nothing else of ours is mapped right there).
  constexpr std::size_t kGuardSlack = 64 * 1024;
  if (task.run_ == nullptr) return false;
  const Stack& stack = task.run_->stack;
  const char* low =
      stack.mapping -
      std::min<std::size_t>(kGuardSlack, reinterpret_cast<std::uintptr_t>(stack.mapping));
  if (stack.empty() || fault < low || fault >= stack.bottom()) return false;
  info->task_name = task.extras_ == nullptr || task.extras_->name.empty()
                        ? "(unnamed)"
                        : task.extras_->name.c_str();
  info->stack_size = stack.usable_size();
  return true;
}

void run_with(FunctionRef<void()> main, const RunOptions& options, Clock& clock, Backend& backend,
              SchedulePolicy& policy, const std::type_info& main_type) {
  if (Runner::current() != nullptr) throw UsageError("Attempted to call run() from inside a run()");
  Runner runner(options, clock, backend, policy);
  runner.run(main, main_type);
}

}  // namespace internal
}  // namespace trellis
