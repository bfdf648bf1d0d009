#include "trellis/core/cancel_scope.h"

#include <algorithm>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/internal/runner.h"

namespace trellis {

std::vector<CancelScope*> lowlevel::Task::enclosing_cancel_scopes() const {
  std::vector<CancelScope*> scopes;
  for (const internal::CancelStatus* status = cancel_status(); status != nullptr;
       status = status->parent()) {
    if (status->scope() != nullptr) scopes.push_back(status->scope());
  }
  return scopes;
}

namespace internal {

// ---- CancelStatus -------------------------------------------------------------------------

void CancelStatus::open(CancelScope* scope, CancelStatus* parent) {
  TRELLIS_ASSERT(scope != nullptr);
  TRELLIS_ASSERT(scope_ == nullptr);
  scope_ = scope;
  effectively_cancelled_ = false;
  set_parent(parent);
}

void CancelStatus::close() {
  TRELLIS_ASSERT(scope_ != nullptr);
  // Scopes nest strictly (run() bodies), so nothing can still hang below a closing status.
  TRELLIS_ASSERT(tasks_.empty());
  TRELLIS_ASSERT(children_.empty());
  set_parent(nullptr);
  scope_ = nullptr;
}

void CancelStatus::set_parent(CancelStatus* parent) {
  TRELLIS_ASSERT(parent != this);
  if (parent_ != nullptr) parent_->children_.remove(*this);
  parent_ = parent;
  if (parent_ != nullptr) parent_->children_.push_back(*this);
  recalculate();
}

bool CancelStatus::parent_cancellation_is_visible_to_us() const noexcept {
  return parent_ != nullptr && !scope_->shield_ && parent_->effectively_cancelled_;
}

void CancelStatus::recalculate() {
  // A depth-first walk with an explicit stack: deep scope nesting must not overflow a small
  // task stack. Only statuses whose state changes propagate to their children; most
  // recalculations touch this status alone, and then nothing is allocated.
  std::vector<CancelStatus*> pending;
  CancelStatus* current = this;
  while (current != nullptr) {
    TRELLIS_ASSERT(current->scope_ != nullptr);
    const bool now_cancelled =
        current->scope_->cancel_called_ || current->parent_cancellation_is_visible_to_us();
    if (now_cancelled != current->effectively_cancelled_) {
      current->effectively_cancelled_ = now_cancelled;
      if (now_cancelled) {
        // Delivery runs abort functions, which never move tasks between statuses, so the
        // list can be walked as it is (as Trio walks its set).
        for (TaskRun& run : current->tasks_) {
          if (run.task->parked()) current->scope_->runner_->deliver_pending_cancel(*run.task);
        }
      }
      for (CancelStatus& child : current->children_) pending.push_back(&child);
    }
    if (pending.empty()) break;
    current = pending.back();
    pending.pop_back();
  }
}

Time CancelStatus::effective_deadline() const noexcept {
  if (effectively_cancelled_) return Time::min();
  const Time own = scope_->deadline_;
  if (parent_ == nullptr || scope_->shield_) return own;
  return std::min(own, parent_->effective_deadline());
}

const CancelScope* CancelStatus::cancelling_scope() const noexcept {
  const CancelStatus* status = this;
  const CancelScope* found = nullptr;
  while (status != nullptr && status->effectively_cancelled_) {
    if (status->scope_->cancel_called_) found = status->scope_;
    if (!status->parent_cancellation_is_visible_to_us()) break;
    status = status->parent_;
  }
  return found;
}

std::vector<CancelStatus*> CancelStatus::children_snapshot() {
  std::vector<CancelStatus*> out;
  for (CancelStatus& child : children_) out.push_back(&child);
  return out;
}

std::vector<lowlevel::Task*> CancelStatus::tasks_snapshot() {
  std::vector<lowlevel::Task*> out;
  out.reserve(tasks_.size());
  for (TaskRun& run : tasks_) out.push_back(run.task);
  return out;
}

}  // namespace internal

// ---- CancelScope --------------------------------------------------------------------------

CancelScope::~CancelScope() {
  // (Not registered: exit() unregistered the timer, and an unentered scope never had one.)
  TRELLIS_ASSERT(state_ != State::kActive);
}

void CancelScope::deadline_expired(void* scope) {
  static_cast<CancelScope*>(scope)->cancel_with(CancelSource::kDeadline);
}

void CancelScope::enter() {
  if (state_ != State::kUnentered) {
    throw UsageError("Each CancelScope may only be used for a single run() block");
  }
  internal::Runner& runner = internal::Runner::require("CancelScope::run()");
  lowlevel::Task& task = runner.require_task("CancelScope::run()");
  runner_ = &runner;
  owner_ = &task;
  // Before the scope is active: cancelling it now only marks it (its status opens below,
  // already cancelled).
  cancel_if_deadline_passed();
  state_ = State::kActive;
  status_.open(this, task.run_->cancel_status);
  runner.activate_cancel_status(task, &status_);
  update_deadline_registration();
  TRELLIS_ASSERT(task.run_->cancel_status == &status_);
}

std::exception_ptr CancelScope::exit(std::exception_ptr error, bool is_cancelled) {
  TRELLIS_ASSERT(state_ == State::kActive);
  TRELLIS_ASSERT(owner_->run_->cancel_status == &status_);
  TRELLIS_ASSERT(runner_->current_task() == owner_);
  if (error != nullptr && status_.effectively_cancelled() &&
      !status_.parent_cancellation_is_visible_to_us()) {
    if (is_cancelled) {
      error = nullptr;
      cancelled_caught_ = true;
    } else {
      bool matched = false;
      error = internal::strip_cancelled(error, &matched);
      if (matched) cancelled_caught_ = true;
    }
  }
  runner_->activate_cancel_status(*owner_, status_.parent());
  status_.close();
  state_ = State::kExited;
  update_deadline_registration();
  return error;
}

void CancelScope::cancel() {
  cancel_with(CancelSource::kExplicit);
}

void CancelScope::cancel_with(CancelSource source) {
  if (cancel_called_) return;  // the first reason sticks
  // Exploration: a cancellation reaches other tasks' checkpoints, which record nothing.
  lowlevel::record_opaque();
  cancel_called_ = true;
  cancel_source_ = source;
  if (state_ == State::kActive) {
    update_deadline_registration();
    status_.recalculate();
  }
}

bool CancelScope::deadline_passed() const {
  if (state_ == State::kExited || deadline_ == kNoDeadline) return false;
  const internal::Runner* runner = runner_ != nullptr ? runner_ : internal::Runner::current();
  return runner != nullptr && runner->now() >= deadline_;
}

void CancelScope::cancel_if_deadline_passed() {
  if (!cancel_called_ && deadline_passed()) cancel_with(CancelSource::kDeadline);
  TRELLIS_ASSERT(cancel_called_ || !deadline_passed());
}

bool CancelScope::cancel_called() const {
  // Trio's cancel_called also reports a deadline that passed before anything looked; the
  // deadline heap (active scope) or enter()/set_deadline() (unentered) makes it stick.
  return cancel_called_ || deadline_passed();
}

void CancelScope::set_deadline(Time deadline) {
  lowlevel::record_opaque();  // exploration: the deadline may cancel other tasks' steps
  cancel_if_deadline_passed();
  deadline_ = deadline;
  if (state_ == State::kActive) update_deadline_registration();
}

void CancelScope::set_shield(bool on) {
  lowlevel::record_opaque();  // exploration: as set_deadline
  shield_ = on;
  if (state_ == State::kActive) status_.recalculate();
}

void CancelScope::update_deadline_registration() {
  const bool wanted = state_ == State::kActive && !cancel_called_ && deadline_ != kNoDeadline;
  const bool registered = runner_ != nullptr && runner_->deadlines().contains(timer_);
  // The heap is in loop time; deadline_ is on the clock of the task that sets it.
  if (wanted && registered) {
    runner_->deadlines().update(timer_, runner_->clock().loop_time_of(deadline_));
  } else if (wanted) {
    runner_->deadlines().push(timer_, runner_->clock().loop_time_of(deadline_));
  } else if (registered) {
    runner_->deadlines().remove(timer_);
  }
  TRELLIS_ASSERT(wanted == (runner_ != nullptr && runner_->deadlines().contains(timer_)));
}

}  // namespace trellis
