// The task allocator: lowlevel::Task's operator new and delete (core/task.h).
//
// Tasks come and go by the hundred thousand (a spawn storm, a server's connections), so their
// memory is recycled through per-thread free lists by 64-byte size class instead of going to
// malloc each time. Tasks start on a cache line: the fields a wake-up touches fill their
// first lines (task.h), which the run loop prefetches for the next sleeper due.
#include <cstddef>
#include <new>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/task.h"

namespace trellis::lowlevel {
namespace {

// Sanitizer builds use plain new/delete, so that use-after-free of a task stays detectable.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRecycleTaskMemory = false;
#else
constexpr bool kRecycleTaskMemory = true;
#endif
constexpr std::size_t kTaskSizeClassBytes = 64;
constexpr std::align_val_t kTaskAlignment{64};
constexpr std::size_t kTaskSizeClassCount = 32;  // recycles tasks up to 2 KiB
// Bounds the memory a thread keeps for reuse: enough for ~100k small tasks of a burst.
constexpr std::size_t kTaskCacheBytesMax = std::size_t{48} << 20;

struct FreeBlock {
  FreeBlock* next;
};

// Invariant: bytes == the sum over the lists of (their length x their class's size).
struct TaskMemoryCache {
  FreeBlock* heads[kTaskSizeClassCount] = {};
  std::size_t bytes = 0;
  ~TaskMemoryCache() {
    for (FreeBlock*& head : heads) {
      while (head != nullptr) ::operator delete(std::exchange(head, head->next), kTaskAlignment);
    }
  }
};

thread_local TaskMemoryCache task_memory_cache;

std::size_t task_size_class(std::size_t size) noexcept {
  return (size + kTaskSizeClassBytes - 1) / kTaskSizeClassBytes;
}

}  // namespace

void* Task::operator new(std::size_t size) {
  const std::size_t size_class = task_size_class(size);
  if (!kRecycleTaskMemory || size_class >= kTaskSizeClassCount) {
    return ::operator new(size, kTaskAlignment);
  }
  TaskMemoryCache& cache = task_memory_cache;
  if (FreeBlock* block = cache.heads[size_class]) {
    TRELLIS_ASSERT(cache.bytes >= size_class * kTaskSizeClassBytes);
    cache.heads[size_class] = block->next;
    cache.bytes -= size_class * kTaskSizeClassBytes;
    return block;
  }
  return ::operator new(size_class* kTaskSizeClassBytes, kTaskAlignment);
}

void Task::operator delete(void* memory, std::size_t size) noexcept {
  const std::size_t size_class = task_size_class(size);
  if (!kRecycleTaskMemory || size_class >= kTaskSizeClassCount) {
    ::operator delete(memory, kTaskAlignment);
    return;
  }
  TaskMemoryCache& cache = task_memory_cache;
  if (cache.bytes + size_class * kTaskSizeClassBytes > kTaskCacheBytesMax) {
    ::operator delete(memory, kTaskAlignment);
    return;
  }
  cache.heads[size_class] = new (memory) FreeBlock{cache.heads[size_class]};
  cache.bytes += size_class * kTaskSizeClassBytes;
  TRELLIS_ASSERT(cache.bytes <= kTaskCacheBytesMax);
}

}  // namespace trellis::lowlevel
