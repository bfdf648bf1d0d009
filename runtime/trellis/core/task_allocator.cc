// The task allocator: lowlevel::Task's operator new and delete (core/task.h).
//
// Tasks come and go by the hundred thousand (a spawn storm, a server's connections), and in a
// spawn storm they all exist at once before the first one runs. So their memory is carved out
// of per-thread slabs by 16-byte size class and recycled through free lists, instead of going
// to malloc each time (an aligned malloc splits and merges chunks: a tenth of a spawn's cost).
// Slabs grow from 64 KiB to 2 MiB; slabs of 2 MiB are aligned, and once the thread's slabs
// hold kHugePageSlabsAfter they are advised for transparent huge pages (huge_page_memory.h), so
// a storm of a million tasks faults in a few dozen huge pages rather than 12,000 small ones.
// (Not before: a huge page is resident whole from its first touch, and the last slab of a
// storm is mostly unused; for 100k tasks of 48 bytes that was 1.2 MB of a 10 MB process.) Slabs
// live until the thread exits, or until a run ends with no task alive while the thread holds more
// than kTaskSlabBytesKept (trim_task_memory(), called by the Runner). Size classes are fine-grained
// because a task's size is what a storm pays per task: a Task holds only what a task that has not
// run needs (task.h), and every 16 bytes of it are 1.6 MB of memory the kernel zeroes for 100k
// tasks.
#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/internal/huge_page_memory.h"
#include "trellis/core/internal/task_memory.h"
#include "trellis/core/task.h"

namespace trellis {
namespace {

// Sanitizer builds use plain new/delete, so that use-after-free of a task stays detectable.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRecycleTaskMemory = false;
#else
constexpr bool kRecycleTaskMemory = true;
#endif
constexpr std::size_t kTaskSizeClassBytes = 16;
constexpr std::align_val_t kTaskAlignment{16};
constexpr std::size_t kTaskSizeClassCount = 128;  // slab-allocates tasks up to 2 KiB
constexpr std::size_t kFirstSlabBytes = std::size_t{64} << 10;
// Slabs mapped after this many bytes of slabs are advised for huge pages: a partly used huge
// page then adds at most a quarter to the task memory.
constexpr std::size_t kHugePageSlabsAfter = std::size_t{8} << 20;
// Kept across runs: enough for ~100k small tasks of a burst, without a fault on the next.
constexpr std::size_t kTaskSlabBytesKept = std::size_t{64} << 20;

struct FreeBlock {
  FreeBlock* next;
};

// Invariant: live == blocks handed out and not yet given back; next <= end, both inside the
// last slab (or null before the first).
struct TaskMemory {
  FreeBlock* heads[kTaskSizeClassCount] = {};
  char* next = nullptr;
  char* end = nullptr;
  struct Slab {
    void* memory;
    std::size_t bytes;
  };
  std::vector<Slab> slabs;
  std::size_t slab_bytes = 0;
  std::size_t live = 0;

  ~TaskMemory() { release_slabs(); }

  void release_slabs() noexcept {
    for (const Slab& slab : slabs) internal::free_table(slab.memory, slab.bytes);
    slabs.clear();
    slab_bytes = 0;
    for (FreeBlock*& head : heads) head = nullptr;
    next = end = nullptr;
  }

  void* carve(std::size_t bytes) {
    if (static_cast<std::size_t>(end - next) < bytes) add_slab();
    void* block = next;
    next += bytes;
    return block;
  }

  void add_slab() {
    // Each slab doubles the last, up to a huge page; from then on one huge page at a time.
    const std::size_t bytes = slabs.empty()
                                  ? kFirstSlabBytes
                                  : std::min(slabs.back().bytes * 2, internal::kHugePageBytes);
    slabs.reserve(slabs.size() + 1);
    // (Cache-line aligned at least.)
    void* memory = internal::allocate_table(bytes, slab_bytes >= kHugePageSlabsAfter);
    slabs.push_back(Slab{memory, bytes});
    slab_bytes += bytes;
    next = static_cast<char*>(memory);
    end = next + bytes;
  }
};

thread_local TaskMemory task_memory;

std::size_t task_size_class(std::size_t size) noexcept {
  return (size + kTaskSizeClassBytes - 1) / kTaskSizeClassBytes;
}

}  // namespace

namespace internal {

void trim_task_memory() noexcept {
  if (!kRecycleTaskMemory) return;
  TaskMemory& memory = task_memory;
  // With no task alive, every block is free: the slabs can go as a whole.
  if (memory.live == 0 && memory.slab_bytes > kTaskSlabBytesKept) memory.release_slabs();
}

}  // namespace internal

namespace lowlevel {

void* Task::operator new(std::size_t size) {
  const std::size_t size_class = task_size_class(size);
  if (!kRecycleTaskMemory || size_class >= kTaskSizeClassCount) {
    return ::operator new(size, kTaskAlignment);
  }
  TaskMemory& memory = task_memory;
  void* block = memory.heads[size_class];
  if (block != nullptr) {
    memory.heads[size_class] = memory.heads[size_class]->next;
  } else {
    block = memory.carve(size_class * kTaskSizeClassBytes);
  }
  ++memory.live;
  return block;
}

void Task::operator delete(void* block, std::size_t size) noexcept {
  const std::size_t size_class = task_size_class(size);
  if (!kRecycleTaskMemory || size_class >= kTaskSizeClassCount) {
    ::operator delete(block, kTaskAlignment);
    return;
  }
  TaskMemory& memory = task_memory;
  TRELLIS_ASSERT(memory.live > 0);
  --memory.live;
  memory.heads[size_class] = new (block) FreeBlock{memory.heads[size_class]};
}

}  // namespace lowlevel
}  // namespace trellis
