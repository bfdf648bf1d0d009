// trellis/core/cancel_scope.h — deadlines and cancellation for a block of code (Trio's
// CancelScope), and the timeout helpers built on it.
//
// A CancelScope wraps a body run through run(); cancelling the scope (cancel(), or its
// deadline passing) makes every checkpoint inside the body — in this task and in tasks of
// nurseries opened inside it — throw Cancelled, until the body exits. The Cancelled unwinds
// the stack (RAII cleanup runs) and is caught by the scope that caused it.
//
//   trellis::CancelScope scope;
//   scope.set_deadline(trellis::current_time() + std::chrono::seconds(5));
//   bool completed = scope.run([] { do_something_slow(); });
//   if (scope.cancelled_caught()) { /* timed out */ }
//
// Cancellation is level-triggered: every checkpoint inside a cancelled scope raises again.
// When nested scopes are all cancelled the outermost one (below any shield) catches.
// shield: cancellation from outside is invisible inside the body (the scope's own
// cancellation still works).
//
// Thread-safety: a scope belongs to one run; any task of that run may call cancel() and the
// setters. Not thread-safe across threads.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/base/intrusive_list.h"
#include "trellis/core/errors.h"
#include "trellis/core/internal/deadline_heap.h"
#include "trellis/core/task.h"
#include "trellis/core/time.h"

namespace trellis {

namespace internal {

class Runner;
class DeadlineHeap;
class TaskStatusState;

// The plumbing of cancellation (Trio's CancelStatus): one per active scope, linked into a
// tree that mirrors the lexical nesting of scopes across tasks. A task's cancel status is the
// status of its innermost active scope. CancelScope originates cancellation; CancelStatus
// carries it down to tasks.
class CancelStatus {
 public:
  CancelStatus() = default;
  CancelStatus(const CancelStatus&) = delete;
  CancelStatus& operator=(const CancelStatus&) = delete;

  void open(CancelScope* scope, CancelStatus* parent);
  void close();
  bool open_now() const noexcept { return scope_ != nullptr; }

  CancelScope* scope() const noexcept { return scope_; }
  CancelStatus* parent() const noexcept { return parent_; }
  void set_parent(CancelStatus* parent);
  bool effectively_cancelled() const noexcept { return effectively_cancelled_; }
  // True if cancellation of our parent reaches us (we are not behind a shield).
  bool parent_cancellation_is_visible_to_us() const noexcept;
  // Recomputes effectively_cancelled_ here and below, delivering cancellation to every
  // newly-cancelled parked task.
  void recalculate();
  // The deadline in effect here: Time::min() if cancelled, else the earliest deadline up to
  // and including the first shielded scope.
  Time effective_deadline() const noexcept;
  // The scope whose cancellation reaches this status (for the Cancelled's message).
  const CancelScope* cancelling_scope() const noexcept;

  std::vector<CancelStatus*> children_snapshot();
  std::vector<lowlevel::Task*> tasks_snapshot();
  void add_task(TaskRun& task) noexcept { tasks_.push_back(task); }
  void remove_task(TaskRun& task) noexcept { tasks_.remove(task); }
  bool has_tasks() const noexcept { return !tasks_.empty(); }

 private:
  CancelScope* scope_ = nullptr;
  CancelStatus* parent_ = nullptr;
  // Invariant: effectively_cancelled_ == scope_->cancel_called_ ||
  // parent_cancellation_is_visible_to_us(), kept true by recalculate() after every change of
  // a scope's cancel state, shield, or parent.
  bool effectively_cancelled_ = false;

 public:
  IntrusiveListHook sibling_hook_;  // on parent_->children_

 private:
  IntrusiveList<CancelStatus, &CancelStatus::sibling_hook_> children_;
  // The tasks that have run and run under this status (a task that has not run yet is on no
  // list: nothing is delivered to it before its first checkpoint).
  IntrusiveList<TaskRun, &TaskRun::cancel_hook> tasks_;
};

}  // namespace internal

class CancelScope {
 public:
  CancelScope() = default;
  explicit CancelScope(Time deadline, bool shield = false) : deadline_(deadline), shield_(shield) {}
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  ~CancelScope();

  // Absolute deadline on the run's clock; kNoDeadline (Time::max()) when none. May be
  // changed at any time; takes effect at the run loop's next deadline check.
  void set_deadline(Time deadline);
  Time deadline() const noexcept { return deadline_; }
  // Changing the shield takes effect at once (unshielding wakes a task blocked inside an
  // already-cancelled outer scope).
  void set_shield(bool on);
  bool shield() const noexcept { return shield_; }
  // Cancels the scope (idempotent); effective at the next checkpoint inside. Allowed before
  // run(). Not a checkpoint.
  void cancel();
  // True once cancelled (explicitly, or because the deadline passed while the scope is
  // unentered or active). A pure query: it never cancels anything itself (an active scope
  // whose deadline passed is cancelled by the run loop's next deadline check).
  bool cancel_called() const;
  // True iff this scope absorbed a Cancelled when its body exited.
  bool cancelled_caught() const noexcept { return cancelled_caught_; }

  // Runs body inside the scope. Single use: a second run() throws UsageError. Returns, for a
  // void body, true iff the body completed; for a body returning R, std::optional<R> holding
  // the result, or nullopt when a cancellation was caught. Exceptions other than this scope's
  // Cancelled propagate. Not itself a checkpoint.
  template <class F>
  auto run(F&& body);

 private:
  // Runs body and captures its exception; a bare Cancelled is recognised without rethrowing.
  template <class F, class Result>
  std::exception_ptr run_body(F& body, Result& result, bool& cancelled) noexcept;

 private:
  friend class internal::CancelStatus;
  friend class internal::Runner;
  friend class internal::DeadlineHeap;
  friend class internal::TaskStatusState;
  friend class Nursery;

  // Invariant: state_ == kActive iff status_.open_now(); while active, not cancelled and
  // with a deadline, the scope's timer_ is registered in the run's deadline heap.
  enum class State { kUnentered, kActive, kExited };

  void enter();
  // Leaves the scope: strips this scope's Cancelled from `error` if it owns it. Returns what
  // must propagate. `is_cancelled`: the caller already knows `error` is a bare Cancelled.
  std::exception_ptr exit(std::exception_ptr error, bool is_cancelled = false);
  void cancel_with(CancelSource source);
  // The mutation that cancel_called() only reports: cancels the scope (source kDeadline) if
  // deadline_passed(). Called where a passed deadline must stick: on entry, and before the
  // deadline moves (so a later deadline never un-cancels the scope).
  void cancel_if_deadline_passed();
  // True if the scope is unentered or active, has a deadline, and the run's clock has
  // reached it. False outside a run (no clock to read) and once the scope has exited.
  bool deadline_passed() const;
  void update_deadline_registration();
  static void deadline_expired(void* scope);

  Time deadline_ = kNoDeadline;
  bool shield_ = false;
  bool cancel_called_ = false;
  bool cancelled_caught_ = false;
  CancelSource cancel_source_ = CancelSource::kExplicit;
  State state_ = State::kUnentered;
  lowlevel::Task* owner_ = nullptr;
  internal::Runner* runner_ = nullptr;
  internal::CancelStatus status_;
  internal::DeadlineTimer timer_{internal::DeadlineTimer::kNotRegistered,
                                 &CancelScope::deadline_expired, this};
};

template <class F, class Result>
std::exception_ptr CancelScope::run_body(F& body, Result& result, bool& cancelled) noexcept {
  try {
    if constexpr (std::is_same_v<Result, bool>) {
      body();
      result = true;
    } else {
      result.emplace(body());
    }
  } catch (const Cancelled&) {
    cancelled = true;
    return std::current_exception();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

template <class F>
auto CancelScope::run(F&& body) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "CancelScope::run: the body must return by value");
  using Result = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
  enter();
  Result result{};
  bool cancelled = false;
  std::exception_ptr error = run_body(body, result, cancelled);
  error = exit(std::move(error), cancelled);
  if (error != nullptr) std::rethrow_exception(error);
  return result;
}

// Runs body inside a CancelScope with the absolute `deadline`; returns what CancelScope::run
// returns (for a void body, true iff it completed). Not itself a checkpoint.
template <class F>
auto move_on_at(Time deadline, F&& body) {
  CancelScope scope(deadline);
  return scope.run(std::forward<F>(body));
}

Time current_time();

// Like move_on_at, with the deadline `d` from now (saturating). Throws std::invalid_argument
// if d < 0.
template <class F>
auto move_on_after(Duration d, F&& body) {
  if (d < Duration::zero()) throw std::invalid_argument("move_on_after: duration must be >= 0");
  return move_on_at(saturating_add(current_time(), d), std::forward<F>(body));
}

// Like move_on_at, but throws TooSlowError if the deadline cancelled the body; otherwise
// returns the body's own result.
template <class F>
decltype(auto) fail_at(Time deadline, F&& body) {
  using R = std::invoke_result_t<F&>;
  CancelScope scope(deadline);
  if constexpr (std::is_void_v<R>) {
    scope.run(std::forward<F>(body));
    if (scope.cancelled_caught()) throw TooSlowError();
  } else {
    std::optional<R> result = scope.run(std::forward<F>(body));
    if (scope.cancelled_caught()) throw TooSlowError();
    return R(std::move(*result));
  }
}

// Like fail_at, with the deadline `d` from now (saturating). Throws std::invalid_argument if
// d < 0.
template <class F>
decltype(auto) fail_after(Duration d, F&& body) {
  if (d < Duration::zero()) throw std::invalid_argument("fail_after: duration must be >= 0");
  return fail_at(saturating_add(current_time(), d), std::forward<F>(body));
}

// The earliest deadline in effect for the calling task (Trio's current_effective_deadline):
// Time::min() if it is cancelled, kNoDeadline if none.
Time current_effective_deadline();

}  // namespace trellis
