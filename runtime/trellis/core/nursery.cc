#include "trellis/core/nursery.h"

#include <algorithm>

#include "trellis/base/assert.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/internal/runner.h"
#include "trellis/core/internal/runner_inline.h"

namespace trellis {

Nursery::Nursery(internal::NurseryKey, NurseryOptions options) {
  internal::Runner& runner = internal::Runner::require("open_nursery()");
  runner_ = &runner;
  parent_task_ = &runner.require_task("open_nursery()");
  strict_ = options.strict_exception_groups.value_or(runner.strict_exception_groups());
  cancel_scope_.enter();
  parent_task_->run_->child_nurseries.push_back(this);
}

Nursery::~Nursery() {
  TRELLIS_ASSERT(closed_);
  TRELLIS_ASSERT(children_.empty());
  TRELLIS_ASSERT(pending_children_ == 0);
}

std::vector<lowlevel::Task*> Nursery::child_tasks() {
  std::vector<lowlevel::Task*> out;
  out.reserve(child_count());
  for (internal::TaskRun& run : children_) out.push_back(run.task);
  runner_->not_yet_run(this, out);
  // In spawn order (a task moved here by TaskStatus::started() among them by its id).
  std::sort(out.begin(), out.end(),
            [](const lowlevel::Task* a, const lowlevel::Task* b) { return a->id() < b->id(); });
  return out;
}

void Nursery::check_open() const {
  if (closed_) throw UsageError("Nursery is closed to new arrivals");
  if (internal::Runner::current() != runner_) {
    throw UsageError("Nursery used outside the run (or thread) that opened it");
  }
}

void Nursery::spawn(const SpawnOptions& options, lowlevel::Task* task, Nursery* eventual_parent) {
  TRELLIS_ASSERT(!closed_);
  lowlevel::record_access(access_id_, lowlevel::Access::kWrite);
  runner_->spawn(task, this, options, eventual_parent);
  TRELLIS_ASSERT(task->parent_nursery_ == this);
}

void Nursery::add_error(std::exception_ptr error, CancelSource source) {
  TRELLIS_ASSERT(error != nullptr);
  pending_errors_.push_back(std::move(error));
  cancel_scope_.cancel_with(source);
}

void Nursery::child_finished(lowlevel::Task& task, internal::TaskRun* run,
                             std::exception_ptr error) {
  TRELLIS_ASSERT(task.parent_nursery_ == this);
  if (run != nullptr) {
    children_.remove(*run);
  } else {
    TRELLIS_ASSERT(pending_children_ > 0);
    --pending_children_;
  }
  // Exploration: recorded as part of the child's last step (finish() runs right after it).
  lowlevel::record_access(access_id_,
                          error == nullptr ? lowlevel::Access::kCommute : lowlevel::Access::kWrite);
  // A parent waiting for its children resumes after every exit, not only the waking one.
  if (parent_waiting_in_exit_) lowlevel::record_happens_before(*parent_task_);
  if (error != nullptr) add_error(std::move(error), CancelSource::kNursery);
  close_if_finished();
}

void Nursery::close_if_finished() {
  if (nested_child_running_ || !children_.empty() || pending_children_ > 0 || pending_starts_ > 0)
    return;
  closed_ = true;
  if (parent_waiting_in_exit_) {
    parent_waiting_in_exit_ = false;
    runner_->reschedule(*parent_task_);
  }
}

std::exception_ptr Nursery::close_after_body(std::exception_ptr body_error) noexcept {
  TRELLIS_ASSERT(runner_->current_task() == parent_task_);
  TRELLIS_ASSERT(nested_child_running_);
  if (body_error != nullptr) add_error(std::move(body_error), CancelSource::kNursery);
  nested_child_running_ = false;
  lowlevel::record_access(access_id_, lowlevel::Access::kRead);
  close_if_finished();
  if (!closed_) {
    // Wait for the children, uncancellably: a cancellation here reaches the children too
    // (they are inside this nursery's scope), and we exit once they have.
    parent_waiting_in_exit_ = true;
    runner_->park([](std::exception_ptr) { return lowlevel::Abort::kFailed; },
                  "nursery exit (waiting for children)");
    // Exploration: the resumed step saw every child's exit, not only the last one's wake-up.
    lowlevel::record_access(access_id_, lowlevel::Access::kRead);
  } else {
    // Nothing to wait for: still a schedule point, but never a cancel point.
    runner_->yield();
  }
  TRELLIS_ASSERT(closed_);
  std::vector<Nursery*>& open = parent_task_->run_->child_nurseries;
  TRELLIS_ASSERT(!open.empty() && open.back() == this);
  open.pop_back();
  std::exception_ptr result;
  if (!pending_errors_.empty()) {
    if (!strict_ && pending_errors_.size() == 1) {
      result = pending_errors_.front();
    } else {
      result = std::make_exception_ptr(ExceptionGroup(
          "Exceptions from Trellis nursery", std::move(pending_errors_), /*loose=*/!strict_));
    }
    pending_errors_.clear();
  }
  return cancel_scope_.exit(std::move(result));
}

namespace internal {

void TaskStatusState::mark_started() {
  TRELLIS_ASSERT(!started_);
  started_ = true;
  lowlevel::record_opaque();  // exploration: wakes start()'s caller, may move the task
  if (old_nursery_ == nullptr) return;
  Nursery& old_nursery = *old_nursery_;
  Nursery& new_nursery = *new_nursery_;
  // If start()'s caller is cancelled, leave the child where it is: moving a task with a
  // Cancelled in flight to where no cancelled scope can catch it would leak the Cancelled.
  // start() then returns (or throws) whatever the child ends with.
  if (old_nursery.cancel_scope_.status_.effectively_cancelled()) return;
  TRELLIS_ASSERT(!new_nursery.closed_);
  // (The old nursery holds the one task that calls started(): it has run.)
  TRELLIS_ASSERT(old_nursery.pending_children_ == 0);
  while (!old_nursery.children_.empty()) {
    TaskRun& run = old_nursery.children_.pop_front();
    lowlevel::Task& task = *run.task;
    task.parent_nursery_ = &new_nursery;
    if (Nursery** slot = task.eventual_parent_slot()) *slot = nullptr;
    new_nursery.children_.push_back(run);
  }
  // Move everything under the old nursery's cancel status beneath the new nursery's. Detach
  // all first, then attach: attaching under a cancelled nursery may run abort functions.
  CancelStatus& old_status = old_nursery.cancel_scope_.status_;
  CancelStatus& new_status = new_nursery.cancel_scope_.status_;
  std::vector<CancelStatus*> statuses = old_status.children_snapshot();
  std::vector<lowlevel::Task*> tasks = old_status.tasks_snapshot();
  std::erase(tasks, old_nursery.parent_task_);
  Runner& runner = *old_nursery.runner_;
  for (CancelStatus* status : statuses) status->set_parent(nullptr);
  for (lowlevel::Task* task : tasks) runner.activate_cancel_status(*task, nullptr);
  for (CancelStatus* status : statuses) status->set_parent(&new_status);
  for (lowlevel::Task* task : tasks) runner.activate_cancel_status(*task, &new_status);
  TRELLIS_ASSERT(old_nursery.children_.empty());
  old_nursery.close_if_finished();
}

void run_start(Nursery& target, TaskStatusState& state, FunctionRef<void(Nursery&)> spawn) {
  ++target.pending_starts_;
  struct Pending {
    Nursery& target;
    ~Pending() {
      --target.pending_starts_;
      target.close_if_finished();
    }
  } pending{target};
  try {
    open_nursery(NurseryOptions{.strict_exception_groups = true}, [&](Nursery& old_nursery) {
      state.bind(old_nursery, target);
      spawn(old_nursery);
    });
  } catch (const ExceptionGroup& group) {
    // The private nursery holds exactly one task, so its group holds one error: the child's
    // error before started(). It propagates unwrapped (Trio #2611).
    if (group.exceptions().size() == 1) std::rethrow_exception(group.exceptions().front());
    throw InternalError("Nursery::start(): the private nursery had several errors");
  }
  if (!state.started()) {
    throw UsageError("child exited without calling task_status.started()");
  }
}

}  // namespace internal
}  // namespace trellis
