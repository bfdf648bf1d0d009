#include "trellis/core/task_local.h"

#include <algorithm>
#include <atomic>

#include "trellis/base/assert.h"
#include "trellis/core/internal/runner.h"
#include "trellis/core/task.h"

namespace trellis::internal {

class TaskLocalAccess {
 public:
  // Where the calling code's task-local values live: the running task's context, else
  // (outside a run, or in run-loop code between tasks) the thread's.
  static TaskLocalsRef& current_locals() noexcept {
    Runner* runner = Runner::current();
    lowlevel::Task* task = runner != nullptr ? runner->current_task() : nullptr;
    return task != nullptr ? task->run_->locals : thread_locals;
  }
  static thread_local TaskLocalsRef thread_locals;
};

thread_local TaskLocalsRef TaskLocalAccess::thread_locals;

void TaskLocalsRef::add_reference(const TaskLocalContext* context) noexcept {
  context->references.fetch_add(1, std::memory_order_relaxed);
}

void TaskLocalsRef::drop_reference(const TaskLocalContext* context) noexcept {
  if (context->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete context;
}

namespace {

const TaskLocalContext::Entry* find_entry(const TaskLocalContext* context,
                                          std::uint64_t key) noexcept {
  if (context == nullptr) return nullptr;
  auto it =
      std::lower_bound(context->entries.begin(), context->entries.end(), key,
                       [](const TaskLocalContext::Entry& e, std::uint64_t k) { return e.key < k; });
  if (it == context->entries.end() || it->key != key) return nullptr;
  return &*it;
}

// The current task's context with key set to value (erased when value is null): a new
// context, since the old one may be shared with other tasks.
TaskLocalsRef with_value(const TaskLocalContext* old, std::uint64_t key,
                         std::shared_ptr<const void> value) {
  auto fresh = std::make_unique<TaskLocalContext>();
  if (old != nullptr) fresh->entries.reserve(old->entries.size() + 1);
  bool placed = false;
  if (old != nullptr) {
    for (const TaskLocalContext::Entry& entry : old->entries) {
      if (!placed && entry.key >= key) {
        placed = true;
        if (value != nullptr) fresh->entries.push_back({key, value});
        if (entry.key == key) continue;
      }
      fresh->entries.push_back(entry);
    }
  }
  if (!placed && value != nullptr) fresh->entries.push_back({key, std::move(value)});
  TRELLIS_ASSERT_SLOW(std::is_sorted(fresh->entries.begin(), fresh->entries.end(),
                                     [](const auto& a, const auto& b) { return a.key < b.key; }));
  if (fresh->entries.empty()) return TaskLocalsRef();
  return TaskLocalsRef::adopt(fresh.release());
}

}  // namespace

std::uint64_t task_local_new_key() noexcept {
  // Keys only identify task-locals; they never influence scheduling, so a process-wide
  // counter does not threaten determinism.
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

const TaskLocalsRef& task_local_thread_context() noexcept {
  return TaskLocalAccess::thread_locals;
}

const void* task_local_find(std::uint64_t key) noexcept {
  const TaskLocalContext::Entry* entry = find_entry(TaskLocalAccess::current_locals().get(), key);
  return entry != nullptr ? entry->value.get() : nullptr;
}

std::shared_ptr<const void> task_local_exchange(std::uint64_t key,
                                                std::shared_ptr<const void> value) {
  TaskLocalsRef& locals = TaskLocalAccess::current_locals();
  const TaskLocalContext::Entry* entry = find_entry(locals.get(), key);
  std::shared_ptr<const void> previous = entry != nullptr ? entry->value : nullptr;
  locals = with_value(locals.get(), key, std::move(value));
  return previous;
}

void task_local_restore(std::uint64_t key, std::shared_ptr<const void> value) noexcept {
  task_local_exchange(key, std::move(value));
}

}  // namespace trellis::internal
