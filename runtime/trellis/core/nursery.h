// trellis/core/nursery.h — structured concurrency: every task lives in a nursery, and a
// nursery's block does not return until every task in it has finished (Trio's nurseries).
//
//   trellis::open_nursery([](trellis::Nursery& n) {
//     n.start_soon(fetch, "a");          // runs concurrently with the rest of the block
//     int port = n.start<int>(server);   // waits until server calls status.started(port)
//     n.start_soon(client, port);
//   });                                  // returns once fetch, server and client are done
//
// Errors: when a child (or the block itself) throws, the nursery cancels its cancel scope —
// every other child gets Cancelled at its next checkpoint — waits for everyone, and throws
// one ExceptionGroup holding every error in arrival order (Trio >= 0.25 strict groups;
// NurseryOptions/RunOptions strict_exception_groups=false throws a lone error unwrapped).
// The Cancelled exceptions this caused are removed from the group by the scope that owns them.
//
// Checkpoints: start_soon() is not one; start() is; leaving the block is a schedule point
// that is never cancelled (the block waits for its children whatever happens).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/base/intrusive_list.h"
#include "trellis/core/access_recorder.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/task.h"

namespace trellis {

// Per-spawn settings. All optional.
struct SpawnOptions {
  std::string name{};          // the task's name; default: the function's name where known
  std::size_t stack_size = 0;  // bytes; 0: the run's RunOptions::stack_size
};

struct NurseryOptions {
  // Unset: the run's RunOptions::strict_exception_groups.
  std::optional<bool> strict_exception_groups{};
};

class Nursery;
template <class T>
class TaskStatus;

namespace internal {

struct NurseryKey {
  explicit NurseryKey() = default;
};

// Shared between Nursery::start() and the child's TaskStatus.
class TaskStatusState {
 public:
  virtual ~TaskStatusState() = default;
  void bind(Nursery& old_nursery, Nursery& new_nursery) noexcept {
    old_nursery_ = &old_nursery;
    new_nursery_ = &new_nursery;
  }
  // started(): checks it is the first call, then moves the task into the new nursery.
  void mark_started();
  bool started() const noexcept { return started_; }

 private:
  bool started_ = false;
  Nursery* old_nursery_ = nullptr;
  Nursery* new_nursery_ = nullptr;
  friend class trellis::Nursery;
};

// Runs `spawn(old_nursery)` inside a private strict nursery, on behalf of target.start().
// Throws the child's error unwrapped if it failed before started().
void run_start(Nursery& target, TaskStatusState& state, FunctionRef<void(Nursery&)> spawn);

}  // namespace internal

class Nursery {
 public:
  Nursery(internal::NurseryKey, NurseryOptions options);
  Nursery(const Nursery&) = delete;
  Nursery& operator=(const Nursery&) = delete;
  ~Nursery();

  // Starts fn(args...) as a new child task (arguments are decay-copied, like std::thread).
  // It first runs after the calling task's next checkpoint. Throws UsageError if the
  // nursery is closed. Not a checkpoint.
  template <class F, class... Args>
  void start_soon(F&& fn, Args&&... args) {
    start_soon(SpawnOptions{}, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  void start_soon(SpawnOptions options, F&& fn, Args&&... args);

  // Starts fn(status, args...) (status: TaskStatus<T>&) and blocks until it calls
  // status.started(value); returns value. Until then the child runs under the caller's cancel
  // scopes and its errors propagate out of start() unwrapped; afterwards it runs on in this
  // nursery. Throws UsageError if fn returns without calling started(), or if the nursery is
  // closed. A checkpoint.
  template <class T = void, class F, class... Args>
  T start(F&& fn, Args&&... args) {
    return start<T>(SpawnOptions{}, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class T = void, class F, class... Args>
  T start(SpawnOptions options, F&& fn, Args&&... args);

  // The scope around the block and every child: cancel() it to stop them all.
  CancelScope& cancel_scope() noexcept { return cancel_scope_; }
  std::size_t child_count() const noexcept {
    lowlevel::record_access(access_id_, lowlevel::Access::kRead);
    return children_.size() + pending_children_;
  }
  std::vector<lowlevel::Task*> child_tasks();
  lowlevel::Task& parent_task() const noexcept { return *parent_task_; }
  bool closed() const noexcept { return closed_; }

  // ---- internal (used by open_nursery and the run loop) ----
  // Called when the block finished (with its error, if any): waits for every child, builds
  // the ExceptionGroup and leaves the cancel scope. Returns what open_nursery must throw.
  std::exception_ptr close_after_body(std::exception_ptr body_error) noexcept;

 private:
  friend class internal::Runner;
  friend class internal::TaskStatusState;
  friend void internal::run_start(Nursery&, internal::TaskStatusState&,
                                  FunctionRef<void(Nursery&)>);

  void check_open() const;
  void spawn(const SpawnOptions& options, lowlevel::Task* task, Nursery* eventual_parent);
  void add_error(std::exception_ptr error, CancelSource source);
  // `run`: the task's TaskRun (on children_), or null if it never ran.
  void child_finished(lowlevel::Task& task, internal::TaskRun* run, std::exception_ptr error);
  // Closes the nursery if its body, every child and every pending start() have finished
  // (Trio's _check_nursery_closed), waking the parent waiting in close_after_body(); else
  // does nothing. Idempotent.
  void close_if_finished();

  internal::Runner* runner_;
  lowlevel::Task* parent_task_;
  bool strict_;
  CancelScope cancel_scope_;
  // Invariant: closed_ becomes true exactly once, when the block has finished, no child is
  // alive and no start() is pending; after that nothing can be spawned here.
  bool nested_child_running_ = true;
  bool closed_ = false;
  bool parent_waiting_in_exit_ = false;
  std::size_t pending_starts_ = 0;
  std::vector<std::exception_ptr> pending_errors_;
  // The children that have run (in first-step order), and how many have not yet (they are
  // only in the run queue: Runner::not_yet_run()).
  internal::IntrusiveList<internal::TaskRun, &internal::TaskRun::nursery_hook> children_;
  std::size_t pending_children_ = 0;
  // Exploration (core/access_recorder.h): a spawn writes the nursery, a child's clean exit
  // is a commuting update (exits in any order leave the same state), the parent's wait for
  // its children reads it.
  mutable lowlevel::ObjectId access_id_ = lowlevel::new_object_id();
};

// The handle a start()ed task uses to report it is ready. A default-constructed TaskStatus
// is "ignored" (Trio's TASK_STATUS_IGNORED): started() does nothing, so a function written
// for start() can also be called directly.
template <class T = void>
class TaskStatus {
 public:
  struct State final : internal::TaskStatusState {
    std::optional<T> value;
  };
  TaskStatus() = default;
  explicit TaskStatus(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // Throws UsageError when called twice. Not a checkpoint.
  void started(T value) {
    if (state_ == nullptr) return;
    if (state_->started()) throw UsageError("called 'started' twice on the same task status");
    state_->value.emplace(std::move(value));
    state_->mark_started();
  }

 private:
  std::shared_ptr<State> state_;
};

template <>
class TaskStatus<void> {
 public:
  struct State final : internal::TaskStatusState {};
  TaskStatus() = default;
  explicit TaskStatus(std::shared_ptr<State> state) : state_(std::move(state)) {}
  void started() {
    if (state_ == nullptr) return;
    if (state_->started()) throw UsageError("called 'started' twice on the same task status");
    state_->mark_started();
  }

 private:
  std::shared_ptr<State> state_;
};

template <class F, class... Args>
void Nursery::start_soon(SpawnOptions options, F&& fn, Args&&... args) {
  check_open();
  using Fn = std::decay_t<F>;
  using Body = internal::BoundCall<Fn, std::decay_t<Args>...>;
  internal::SpawnedName<Fn> name(fn);
  auto* task = new internal::TaskWithBody<Body, internal::SpawnedName<Fn>>(
      Body{Fn(std::forward<F>(fn)), {std::decay_t<Args>(std::forward<Args>(args))...}}, name);
  spawn(options, task, nullptr);
}

template <class T, class F, class... Args>
T Nursery::start(SpawnOptions options, F&& fn, Args&&... args) {
  check_open();
  auto state = std::make_shared<typename TaskStatus<T>::State>();
  using Fn = std::decay_t<F>;
  internal::SpawnedName<Fn> name(fn);
  auto body = [status = TaskStatus<T>(state), fn = Fn(std::forward<F>(fn)),
               bound = std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...)]() mutable {
    std::apply([&](auto&... a) { std::invoke(std::move(fn), status, std::move(a)...); }, bound);
  };
  using Body = decltype(body);
  std::optional<Body> pending_body(std::move(body));
  internal::run_start(*this, *state, [&](Nursery& old_nursery) {
    auto* task = new internal::TaskWithBody<Body, internal::SpawnedName<Fn>, /*kStarted=*/true>(
        std::move(*pending_body), name);
    old_nursery.spawn(options, task, this);
  });
  if constexpr (!std::is_void_v<T>) {
    return std::move(*state->value);
  }
}

// Opens a nursery, runs body(nursery), then waits for every child. Returns nothing for a
// void body; for a body returning R, std::optional<R> (nullopt when the nursery's own cancel
// scope was cancelled and caught the body's Cancelled). Throws the ExceptionGroup of the
// children's and the body's errors.
template <class F>
auto open_nursery(NurseryOptions options, F&& body) {
  using R = std::invoke_result_t<F&, Nursery&>;
  static_assert(!std::is_reference_v<R>, "open_nursery: the body must return by value");
  Nursery nursery(internal::NurseryKey{}, options);
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    try {
      body(nursery);
    } catch (...) {
      error = std::current_exception();
    }
    error = nursery.close_after_body(std::move(error));
    if (error != nullptr) std::rethrow_exception(error);
  } else {
    std::optional<R> result;
    try {
      result.emplace(body(nursery));
    } catch (...) {
      error = std::current_exception();
    }
    error = nursery.close_after_body(std::move(error));
    if (error != nullptr) std::rethrow_exception(error);
    return result;
  }
}

template <class F>
auto open_nursery(F&& body) {
  return open_nursery(NurseryOptions{}, std::forward<F>(body));
}

}  // namespace trellis
