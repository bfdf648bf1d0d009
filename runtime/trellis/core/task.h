// trellis/core/task.h — a task: one fiber running one function, for introspection.
//
// Users never create a Task; they see one through lowlevel::current_task(), instruments and
// task-tree dumps. A task belongs to exactly one nursery (its parent) from spawn to exit; the
// nurseries it opens are its child nurseries, which form the task tree of the run.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/base/intrusive_list.h"
#include "trellis/core/internal/fiber.h"
#include "trellis/core/time.h"

namespace trellis {

class Nursery;
class CancelScope;

namespace internal {
class Runner;
class CancelStatus;
class TaskStatusState;
struct TaskLocalContext;
class TaskLocalAccess;
}  // namespace internal

namespace lowlevel {

// What an abort function returns (Trio's Abort): kSucceeded means the wait was undone and the
// task may be rescheduled with the Cancelled; kFailed means the task stays parked until its
// waker reschedules it (it may deliver the Cancelled itself later).
enum class Abort { kSucceeded, kFailed };

// Called at most once per wait, when the parked task's context becomes cancelled. `cancelled`
// holds the Cancelled exception to deliver.
using AbortFn = FunctionRef<Abort(std::exception_ptr cancelled)>;

class Task {
 public:
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  // Tasks come and go by the hundred thousand: their memory is recycled through per-thread
  // free lists by size class instead of going to malloc each time.
  static void* operator new(std::size_t size);
  static void operator delete(void* memory, std::size_t size) noexcept;

  // The task's name: SpawnOptions::name if given, else the spawned function's name where it
  // can be found (a function's symbol, or a lambda's type), computed on first use.
  const std::string& name() const;
  // Spawn order within the run, starting at 0 for the root task. Deterministic.
  std::uint64_t id() const noexcept { return id_; }
  // The nursery this task runs in (nullptr for the root task).
  Nursery* parent_nursery() const noexcept { return parent_nursery_; }
  // While inside Nursery::start() before started(): the nursery it will move to.
  Nursery* eventual_parent_nursery() const noexcept { return eventual_parent_nursery_; }
  // Nurseries this task has open, outermost first.
  const std::vector<Nursery*>& child_nurseries() const noexcept { return child_nurseries_; }
  // While parked: what the task waits on ("sleep", "Event.wait", ...); empty otherwise.
  std::string_view waiting_on() const noexcept { return waiting_on_; }
  bool parked() const noexcept { return state_ == State::kParked; }
  // Counters of checkpoints passed, for assert_checkpoints (Trio's _cancel_points and
  // _schedule_points).
  std::uint64_t cancel_points() const noexcept { return cancel_points_; }
  std::uint64_t schedule_points() const noexcept { return schedule_points_; }
  // The open cancel scopes the task runs inside, innermost first: its own, then those of the
  // nurseries it was spawned into, up to the run's root. For instruments and fault
  // injection (cancelling one is CancelScope::cancel(), delivered at a later checkpoint).
  std::vector<CancelScope*> enclosing_cancel_scopes() const;

 protected:
  Task() = default;
  virtual ~Task() = default;
  // Runs the spawned function once (on the task's own stack), then destroys it.
  virtual void invoke() = 0;

 private:
  friend class internal::Runner;
  friend class internal::CancelStatus;
  friend class internal::TaskStatusState;
  friend class internal::TaskLocalAccess;
  friend class trellis::Nursery;
  friend class trellis::CancelScope;

  enum class State { kNew, kRunnable, kRunning, kParked, kFinished };

  // Field order: what a wake-up, a switch and a checkpoint touch comes first, so it fills
  // the task's first three cache lines (tasks are 64-byte aligned; expire_deadlines()
  // prefetches them for the next sleeper due).
  //
  // Invariant: state_ == kRunnable iff the task is in the run queue (exactly once);
  // state_ == kParked iff it waits in wait_task_rescheduled() with abort_fn_ set until the
  // abort function is called (then abort_fn_ is null while it stays parked).
  State state_ = State::kNew;
  internal::Runner* runner_ = nullptr;
  // Parking: see wait_task_rescheduled().
  AbortFn* abort_fn_ = nullptr;
  std::exception_ptr resume_error_;  // delivered when the task resumes
  // Cancellation. Invariant: while alive, cancel_status_ is non-null and this task is on
  // cancel_status_->tasks_ through cancel_status_hook_.
  internal::CancelStatus* cancel_status_ = nullptr;
  std::uint64_t cancel_points_ = 0;
  std::uint64_t schedule_points_ = 0;
  // Fiber.
  internal::ExecutionContext context_;
  internal::Stack stack_;
  Time sleep_deadline_ = kNoDeadline;  // while parked in sleep: when it wakes (for reports)
  std::string_view waiting_on_;

  std::uint64_t id_ = 0;
  mutable std::string name_;
  std::size_t stack_size_ = 0;
  internal::IntrusiveListHook cancel_status_hook_;

  // Tree. Invariant: while alive, the task is on parent_nursery_->children_ through
  // nursery_hook_ (except the root task, which has no parent nursery).
  Nursery* parent_nursery_ = nullptr;
  Nursery* eventual_parent_nursery_ = nullptr;
  std::vector<Nursery*> child_nurseries_;
  internal::IntrusiveListHook nursery_hook_;
  internal::IntrusiveListHook all_tasks_hook_;

  // Task-local values (TaskLocal<T>): shared, immutable, copied from the spawner at spawn.
  std::shared_ptr<const internal::TaskLocalContext> locals_;

  std::exception_ptr error_;  // what the task's function threw, once finished

 protected:
  // Where the default name comes from, when no SpawnOptions::name was given.
  const std::type_info* name_type_ = nullptr;
  const void* name_function_ = nullptr;
};

}  // namespace lowlevel

namespace internal {

// The concrete task: owns the spawned callable until it has run.
template <class F>
class TaskWithBody final : public lowlevel::Task {
 public:
  explicit TaskWithBody(F&& body) : body_(std::move(body)) {}
  void set_name_source(const std::type_info* type, const void* function) noexcept {
    name_type_ = type;
    name_function_ = function;
  }

 private:
  void invoke() override {
    struct Destroy {
      std::optional<F>& body;
      ~Destroy() { body.reset(); }
    } destroy{body_};
    (*body_)();
  }
  std::optional<F> body_;
};

}  // namespace internal
}  // namespace trellis
