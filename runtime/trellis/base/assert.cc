#include "trellis/base/assert.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace trellis::internal {
namespace {
std::atomic<TaskNameHook> task_name_hook{nullptr};
}  // namespace

void set_assert_task_name_hook(TaskNameHook hook) noexcept {
  task_name_hook.store(hook);
}

void assert_failed(const char* condition, const char* file, int line,
                   const char* function) noexcept {
  const TaskNameHook hook = task_name_hook.load();
  const char* task = hook != nullptr ? hook() : nullptr;
  std::fprintf(stderr, "trellis: internal assertion failed: %s\n  at %s:%d in %s()\n  task: %s\n",
               condition, file, line, function, task != nullptr ? task : "(none)");
  std::fflush(stderr);
  std::abort();
}

}  // namespace trellis::internal
