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

#include "trellis/base/assert.h"
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
  // Gives up the counted reference to the caller (adopt() takes it back).
  const TaskLocalContext* release() noexcept { return std::exchange(context_, nullptr); }

 private:
  static void add_reference(const TaskLocalContext* context) noexcept;  // task_local.cc
  static void drop_reference(const TaskLocalContext* context) noexcept;
  const TaskLocalContext* context_ = nullptr;
};

// What a task needs only once it has started running: its fiber, what it waits on, its
// checkpoint counters, the nurseries it has open, its place in its nursery and under its
// cancel status, its task-local values, its outcome. It lives at the top of the task's own
// stack, from the task's first step to its exit, so a task spawned in a storm costs only its
// Task until it runs (stacks, and this block with them, are given at first run and recycled
// hot), and a switch touches the stack it switches to and nothing more.
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
  // Cancellation. Invariant: while the task runs (from its first step to its exit),
  // cancel_status is non-null (except for the root task) and the task is on
  // cancel_status->tasks_ through cancel_hook. (Before its first step a task is on no list:
  // its status is its nursery's, Task::cancel_status().)
  CancelStatus* cancel_status = nullptr;
  std::string_view waiting_on;
  Stack stack;                        // the whole stack, this block included
  Time sleep_deadline = kNoDeadline;  // while parked in sleep: when it wakes (for reports)
  std::vector<Nursery*> child_nurseries;
  std::exception_ptr error;  // what the task's function threw, once finished
  lowlevel::Task* task = nullptr;
  // On the parent nursery's children_ (from the first step to the exit; in first-step order).
  IntrusiveListHook nursery_hook;
  IntrusiveListHook cancel_hook;  // on cancel_status->tasks_
  // Task-local values (TaskLocal<T>): shared, immutable; the spawner's, as of the spawn.
  TaskLocalsRef locals;
};

// What few tasks have: a name given at the spawn (or computed when first asked for), a stack
// size other than the run's default.
struct TaskExtras {
  std::string name;               // empty until given or computed (neither is ever empty)
  std::uint32_t stack_pages = 0;  // 0: the run's default
};

// A task's one word for its run state: its TaskRun once it has run (from its first step to
// its exit), and before that the task-local values it was spawned with (a counted reference,
// tagged in bit 0; TaskRun is 64-byte aligned). A pending task pays for the one pointer.
class RunSlot {
 public:
  RunSlot() = default;
  RunSlot(const RunSlot&) = delete;
  RunSlot& operator=(const RunSlot&) = delete;
  ~RunSlot() { drop_pending_locals(); }

  // The TaskRun, or nullptr before the first step (and after the exit).
  TaskRun* get() const noexcept {
    return (bits_ & kPendingTag) != 0 ? nullptr : reinterpret_cast<TaskRun*>(bits_);
  }
  // Only for a task that has run (the hot paths: parking, switching, checkpoints).
  TaskRun* operator->() const noexcept {
    TRELLIS_ASSERT_SLOW(bits_ != 0 && (bits_ & kPendingTag) == 0);
    return reinterpret_cast<TaskRun*>(bits_);
  }
  TaskRun& operator*() const noexcept { return *operator->(); }
  friend bool operator==(const RunSlot& slot, std::nullptr_t) noexcept {
    return slot.get() == nullptr;
  }

  // Before the first step: keeps the spawner's task-local values.
  void set_pending_locals(TaskLocalsRef locals) noexcept {
    TRELLIS_ASSERT(bits_ == 0);
    if (const TaskLocalContext* context = locals.release()) {
      bits_ = reinterpret_cast<std::uintptr_t>(context) | kPendingTag;
    }
  }
  // At the first step: gives the pending task-local values up (to the TaskRun).
  TaskLocalsRef take_pending_locals() noexcept {
    TRELLIS_ASSERT(get() == nullptr);
    const auto* context = reinterpret_cast<const TaskLocalContext*>(bits_ & ~kPendingTag);
    bits_ = 0;
    return TaskLocalsRef::adopt(context);
  }
  void set(TaskRun* run) noexcept {
    TRELLIS_ASSERT((bits_ & kPendingTag) == 0);
    TRELLIS_ASSERT((reinterpret_cast<std::uintptr_t>(run) & kPendingTag) == 0);
    bits_ = reinterpret_cast<std::uintptr_t>(run);
  }

 private:
  static constexpr std::uintptr_t kPendingTag = 1;
  void drop_pending_locals() noexcept {
    if ((bits_ & kPendingTag) != 0) (void)take_pending_locals();
  }
  std::uintptr_t bits_ = 0;
};

}  // namespace internal

namespace lowlevel {

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
  // Destroys the spawned function of a task that exits without running (its stack could not
  // be had).
  virtual void discard_body() noexcept = 0;

 private:
  friend class internal::Runner;
  friend class internal::CancelStatus;
  friend class internal::TaskStatusState;
  friend class internal::TaskLocalAccess;
  friend class trellis::Nursery;
  friend class trellis::CancelScope;
  enum class State : std::uint8_t { kNew, kRunnable, kRunning, kParked, kFinished };

  // Where the default name comes from (TaskWithBody knows the spawned function).
  virtual internal::TaskNameSource name_source() const noexcept = 0;
  // Where a start()ed task keeps its eventual parent nursery (null for other tasks: only they
  // pay for it).
  virtual Nursery** eventual_parent_slot() const noexcept = 0;

  // Before the first step: the cancel status the task will run under (its nursery's).
  // From then on: run_->cancel_status; none once it has exited. (runner.cc)
  internal::CancelStatus* cancel_status() const noexcept;
  // The stack size asked for at the spawn, in pages (0: the run's default).
  std::uint32_t stack_pages() const noexcept {
    return extras_ != nullptr ? extras_->stack_pages : 0;
  }
  internal::TaskExtras& extras() const {
    if (extras_ == nullptr) extras_ = std::make_unique<internal::TaskExtras>();
    return *extras_;
  }

  // Every byte here is paid by each task of a spawn storm before the first one runs (they
  // all exist at once: start_soon() is not a checkpoint), so the Task holds only what a task
  // that has not run yet needs (40 bytes, its function's captures after them); the rest is
  // in run_, at the top of its stack, and in the run queue's one pointer to it. It is on no
  // list until its first step: its nursery counts it (Nursery::pending_children_), its cancel
  // status is its nursery's, and the run loop finds it in the run queue.
  //
  // Invariant: state_ == kRunnable iff the task is in the run queue (exactly once);
  // state_ == kParked iff it waits in wait_task_rescheduled() with run_->abort_fn set until
  // the abort function is called (then it is null while the task stays parked).
  // Invariant: run_ != nullptr iff the task has a stack: from its first step to its exit.
  // Spawn order within the run (48 bits: 2.8e14 spawns) and the state, in one word.
  std::uint64_t id_ : 48 = 0;
  State state_ : 8 = State::kNew;

  // The TaskRun once the task has run; before that, its task-local values.
  internal::RunSlot run_;

  // Tree. Invariant: while alive, the task's nursery counts it (except the root task, which
  // has none); from its first step to its exit it is on parent_nursery_->children_ through
  // run_->nursery_hook. Every living task is in the tree under the root task, or not yet run
  // and in the run queue (Runner::living_tasks()).
  Nursery* parent_nursery_ = nullptr;

  // SpawnOptions::name or the default name once computed, and SpawnOptions::stack_size:
  // null for a task spawned with neither whose name nobody asked for.
  mutable std::unique_ptr<internal::TaskExtras> extras_;
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
  TaskWithBody(const TaskWithBody&) = delete;
  TaskWithBody& operator=(const TaskWithBody&) = delete;

 private:
  ~TaskWithBody() override {}  // the body is gone by now (invoke() or discard_body())
  void invoke() override {
    struct Destroy {
      Body& body;
      ~Destroy() { body.~Body(); }
    } destroy{body_};
    body_();
  }
  void discard_body() noexcept override { body_.~Body(); }
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
  // Alive from the spawn until the function has run (invoke()) or the task exits without
  // running (discard_body()): a union member, so that no flag says which.
  union {
    Body body_;
  };
};

}  // namespace internal
}  // namespace trellis
