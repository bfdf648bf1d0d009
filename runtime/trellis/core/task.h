// trellis/core/task.h — a task: one fiber running one function, for introspection.
//
// Users never create a Task; they see one through lowlevel::current_task(), instruments and
// task-tree dumps. A task belongs to exactly one nursery (its parent) from spawn to exit; the
// nurseries it opens are its child nurseries, which form the task tree of the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
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

class Task;

}  // namespace lowlevel

namespace internal {

// Where a task's default name comes from: a function's address (named by its symbol) or a
// type (a lambda's, a function object's).
struct TaskNameSource {
  const std::type_info* type = nullptr;
  const void* function = nullptr;
};

// A counted reference to an immutable TaskLocalContext (task_local.h), one pointer wide: every
// task holds one (usually null).
class TaskLocalsRef {
 public:
  TaskLocalsRef() = default;
  // Takes over a reference already counted (a new context starts with one).
  static TaskLocalsRef adopt(const TaskLocalContext* context) noexcept {
    TaskLocalsRef ref;
    ref.context_ = context;
    return ref;
  }
  TaskLocalsRef(const TaskLocalsRef& other) noexcept : context_(other.context_) {
    if (context_ != nullptr) add_reference(context_);
  }
  TaskLocalsRef(TaskLocalsRef&& other) noexcept : context_(other.context_) {
    other.context_ = nullptr;
  }
  TaskLocalsRef& operator=(TaskLocalsRef other) noexcept {
    std::swap(context_, other.context_);
    return *this;
  }
  ~TaskLocalsRef() {
    if (context_ != nullptr) drop_reference(context_);
  }
  const TaskLocalContext* get() const noexcept { return context_; }

 private:
  static void add_reference(const TaskLocalContext* context) noexcept;  // task_local.cc
  static void drop_reference(const TaskLocalContext* context) noexcept;
  const TaskLocalContext* context_ = nullptr;
};

// A task's links into the two lists it is on while alive (its cancel status's tasks, its
// nursery's children): a standard-layout base of lowlevel::Task, so the task is found from a
// link by the link's offset, and a link needs no owner pointer.
struct TaskLinks {
  IntrusiveLink cancel_status;
  IntrusiveLink nursery;
};

// What a task needs only once it has started running: its fiber, what it waits on, its
// checkpoint counters, the nurseries it has open, its outcome. It lives at the top of the
// task's own stack, from the task's first step to its exit, so a task spawned in a storm
// costs only its Task until it runs (stacks, and this block with them, are given at first run
// and recycled hot), and a switch touches the stack it switches to and nothing more.
struct TaskRun {
  // Field order: what a park, a wake-up and a switch touch comes first, so that the block's
  // first cache line (it is 64-byte aligned) holds the parking state, the counters and the
  // context's switch fields (ExecutionContext's first 32 bytes), and the second the rest.
  // Parking: see Runner::park().
  lowlevel::AbortFn* abort_fn = nullptr;
  std::exception_ptr resume_error;  // delivered when the task resumes
  std::uint64_t cancel_points = 0;
  std::uint64_t schedule_points = 0;
  ExecutionContext context;
  std::string_view waiting_on;
  Stack stack;                        // the whole stack, this block included
  Time sleep_deadline = kNoDeadline;  // while parked in sleep: when it wakes (for reports)
  std::vector<Nursery*> child_nurseries;
  std::exception_ptr error;  // what the task's function threw, once finished
};

}  // namespace internal

namespace lowlevel {

class Task : private internal::TaskLinks {
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
  Nursery* eventual_parent_nursery() const noexcept {
    Nursery* const* slot = eventual_parent_slot();
    return slot != nullptr ? *slot : nullptr;
  }
  // Nurseries this task has open, outermost first.
  const std::vector<Nursery*>& child_nurseries() const noexcept;
  // While parked: what the task waits on ("sleep", "Event.wait", ...); empty otherwise.
  std::string_view waiting_on() const noexcept {
    return run_ != nullptr ? run_->waiting_on : std::string_view();
  }
  bool parked() const noexcept { return state_ == State::kParked; }
  // Counters of checkpoints passed, for assert_checkpoints (Trio's _cancel_points and
  // _schedule_points).
  std::uint64_t cancel_points() const noexcept { return run_ != nullptr ? run_->cancel_points : 0; }
  std::uint64_t schedule_points() const noexcept {
    return run_ != nullptr ? run_->schedule_points : 0;
  }
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
  template <class, auto, auto>
  friend class internal::IntrusiveList;

  // The task a link belongs to (the lists' OwnerOf).
  static Task& of_cancel_status_link(internal::IntrusiveLink* link) noexcept {
    auto* links = reinterpret_cast<TaskLinks*>(reinterpret_cast<char*>(link) -
                                               offsetof(TaskLinks, cancel_status));
    return *static_cast<Task*>(links);
  }
  static Task& of_nursery_link(internal::IntrusiveLink* link) noexcept {
    auto* links =
        reinterpret_cast<TaskLinks*>(reinterpret_cast<char*>(link) - offsetof(TaskLinks, nursery));
    return *static_cast<Task*>(links);
  }

  enum class State : std::uint8_t { kNew, kRunnable, kRunning, kParked, kFinished };

  // Where the default name comes from (TaskWithBody knows the spawned function).
  virtual internal::TaskNameSource name_source() const noexcept = 0;
  // Where a start()ed task keeps its eventual parent nursery (null for other tasks: only they
  // pay for it).
  virtual Nursery** eventual_parent_slot() const noexcept = 0;

  // Every byte here is paid by each task of a spawn storm before the first one runs (they
  // all exist at once: start_soon() is not a checkpoint), so the Task holds only what a task
  // that has not run yet needs; the rest is in run_, at the top of its stack.
  //
  // Invariant: state_ == kRunnable iff the task is in the run queue (exactly once);
  // state_ == kParked iff it waits in wait_task_rescheduled() with run_->abort_fn set until
  // the abort function is called (then it is null while the task stays parked).
  // Invariant: run_ != nullptr iff the task has a stack: from its first step to its exit.
  State state_ = State::kNew;

  // Stack size in pages (the stack is given at first run).
  std::uint32_t stack_pages_ = 0;
  internal::TaskRun* run_ = nullptr;
  // Cancellation. Invariant: while alive, cancel_status_ is non-null and this task is on
  // cancel_status_->tasks_ through its cancel_status link (TaskLinks).
  internal::CancelStatus* cancel_status_ = nullptr;
  std::uint64_t id_ = 0;

  // Tree. Invariant: while alive, the task is on parent_nursery_->children_ through its
  // nursery link (except the root task, which has no parent nursery). Every living task is
  // in the tree under the root task (Runner::living_tasks() walks it).
  Nursery* parent_nursery_ = nullptr;

  // Task-local values (TaskLocal<T>): shared, immutable, copied from the spawner at spawn.
  internal::TaskLocalsRef locals_;
  // SpawnOptions::name, or the default name once computed (null until then).
  mutable std::unique_ptr<std::string> name_;
};

}  // namespace lowlevel

namespace internal {

// Names a task after the function it was spawned with: a function by its symbol, any other
// callable by its type.
template <class Fn, bool kIsFunction =
                        (std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>)>
struct SpawnedName {
  explicit SpawnedName(const Fn& /*fn*/) noexcept {}
  TaskNameSource source() const noexcept { return {&typeid(Fn), nullptr}; }
};
template <class Fn>
struct SpawnedName<Fn, true> {
  explicit SpawnedName(Fn fn) noexcept : function(reinterpret_cast<const void*>(fn)) {}
  TaskNameSource source() const noexcept { return {&typeid(Fn), function}; }
  const void* function;
};
// Names a task after a type known only at run time (run()'s main).
struct TypeName {
  const std::type_info* type = nullptr;
  TaskNameSource source() const noexcept { return {type, nullptr}; }
};

// fn(args...), with fn and args decay-copied: start_soon's body. (Empty callables and argument
// lists take no space.)
template <class Fn, class... Args>
struct BoundCall {
  [[no_unique_address]] Fn fn;
  [[no_unique_address]] std::tuple<Args...> args;
  void operator()() {
    std::apply([&](auto&... a) { std::invoke(std::move(fn), std::move(a)...); }, args);
  }
};

// The concrete task: owns the spawned callable until it has run. kStarted: spawned by
// Nursery::start() (it has an eventual parent nursery until it calls started()).
template <class Body, class Name, bool kStarted = false>
class TaskWithBody final : public lowlevel::Task {
 public:
  TaskWithBody(Body&& body, Name name) : name_(name), body_(std::move(body)) {}

 private:
  void invoke() override {
    struct Destroy {
      std::optional<Body>& body;
      ~Destroy() { body.reset(); }
    } destroy{body_};
    (*body_)();
  }
  TaskNameSource name_source() const noexcept override { return name_.source(); }
  Nursery** eventual_parent_slot() const noexcept override {
    if constexpr (kStarted) {
      return &eventual_parent_;
    } else {
      return nullptr;
    }
  }

  struct NoSlot {};
  [[no_unique_address]] mutable std::conditional_t<kStarted, Nursery*, NoSlot> eventual_parent_{};
  [[no_unique_address]] Name name_;
  std::optional<Body> body_;
};

}  // namespace internal
}  // namespace trellis
