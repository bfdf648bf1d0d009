// trellis/core/internal/task_memory.h — the task allocator's run-end hook (task_allocator.cc).
//
// Internal: the Runner calls it when a run ends.
#pragma once

namespace trellis::internal {

// Hands the thread's task slabs back to the system if no task is alive and they hold more
// than the allocator keeps for the next run (a burst of a million tasks does not stay mapped).
void trim_task_memory() noexcept;

}  // namespace trellis::internal
