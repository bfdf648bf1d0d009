// trellis/core/task_local.h — TaskLocal<T>: a value per task, inherited by the tasks it spawns
// (Python's contextvars.ContextVar, as Trio uses it).
//
// Every task carries a context: the values of the task-locals set in it. A task spawned with
// start_soon() or start() begins with a copy of the context of the task that spawned it, so a
// request id or a log prefix set before spawning is seen by the children; set() in a child
// changes only the child's (and its future children's) values, never the parent's.
//
//   trellis::TaskLocal<std::string> request_id{"-"};
//   request_id.set("req-42");
//   trellis::open_nursery([](trellis::Nursery& n) {
//     n.start_soon([] {
//       log(request_id.get());   // "req-42"
//       request_id.set("child");   // invisible to the parent
//     });
//   });
//
// Copies are cheap: contexts are immutable and shared between tasks until one of them sets a
// value (copy on write, O(number of task-locals set in that task)). A task that never touches
// task-locals pays one pointer copy per spawn.
//
// Outside a run, get() and set() work on the calling thread's own context, which is what
// run()'s first task starts with (a value set before run() is seen inside it; a set() inside
// the run does not change it). Each thread has its own values; a run's values are used on
// its run-loop thread only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace trellis {
namespace internal {

class TaskLocalsRef;

// An immutable snapshot of a task's task-local values, shared by the tasks that inherited it.
struct TaskLocalContext {
  struct Entry {
    std::uint64_t key;
    std::shared_ptr<const void> value;
  };
  // Invariant: sorted by key, keys unique, every value non-null. Never changed once shared:
  // a set() builds a new context.
  std::vector<Entry> entries;
  // Counted by TaskLocalsRef (task.h); a new context starts with one reference.
  mutable std::atomic<std::size_t> references{1};
};

// A key no other TaskLocal of this process has had (keys are not addresses: a TaskLocal
// created where a destroyed one lived must not see its values).
std::uint64_t task_local_new_key() noexcept;
// The current task's (outside a run: this thread's) value for key, or nullptr if none.
const void* task_local_find(std::uint64_t key) noexcept;
// Replaces the current task's (or thread's) value for key (null: unset); returns the value
// it had, for restoring it later (null if unset).
std::shared_ptr<const void> task_local_exchange(std::uint64_t key,
                                                std::shared_ptr<const void> value);
// The calling thread's context outside any task; the root task of a run starts from it.
const TaskLocalsRef& task_local_thread_context() noexcept;
// task_local_exchange for destructors: out of memory terminates.
void task_local_restore(std::uint64_t key, std::shared_ptr<const void> value) noexcept;

}  // namespace internal

template <class T>
class TaskLocal {
 public:
  // Restores the value a task-local had before scoped_set(), when it goes out of scope.
  class [[nodiscard]] ScopedValue {
   public:
    ScopedValue(const ScopedValue&) = delete;
    ScopedValue& operator=(const ScopedValue&) = delete;
    ~ScopedValue() { internal::task_local_restore(key_, std::move(previous_)); }

   private:
    friend class TaskLocal;
    ScopedValue(std::uint64_t key, std::shared_ptr<const void> previous)
        : key_(key), previous_(std::move(previous)) {}
    std::uint64_t key_;
    std::shared_ptr<const void> previous_;
  };

  explicit TaskLocal(T default_value)
      : key_(internal::task_local_new_key()), default_(std::move(default_value)) {}
  TaskLocal(const TaskLocal&) = delete;
  TaskLocal& operator=(const TaskLocal&) = delete;

  // The current task's value, else the default. The reference stays valid until this task
  // next changes this task-local (set, reset, a ScopedValue ending). Never blocks.
  const T& get() const noexcept {
    const void* value = internal::task_local_find(key_);
    return value != nullptr ? *static_cast<const T*>(value) : default_;
  }

  // Sets the current task's value (and what tasks it spawns from now on inherit); outside a
  // run, the calling thread's. Never blocks.
  void set(T value) {
    internal::task_local_exchange(key_, std::make_shared<const T>(std::move(value)));
  }

  // Back to the default for the current task (outside a run, the calling thread).
  void reset() { internal::task_local_exchange(key_, nullptr); }

  // Sets the value until the returned guard is destroyed, then restores the previous one
  // (Python's ContextVar.set() + reset(token)). Destroy it in the task that created it.
  ScopedValue scoped_set(T value) {
    return ScopedValue(
        key_, internal::task_local_exchange(key_, std::make_shared<const T>(std::move(value))));
  }

  // The default value given at construction.
  const T& default_value() const noexcept { return default_; }

 private:
  std::uint64_t key_;
  T default_;
};

}  // namespace trellis
