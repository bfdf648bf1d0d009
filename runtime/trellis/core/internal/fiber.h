// trellis/core/internal/fiber.h — execution contexts on pooled stacks (Boost.Context fcontext).
//
// The lowest layer of the runtime: a Stack (mmapped once, reused through a per-thread pool,
// with a guard page below it), an ExecutionContext (a suspended point of execution on some
// stack), and switch_context(), the only function that moves the CPU from one context to
// another. switch_context() also does the two things every fiber library must and Boost.Context
// does not: it tells AddressSanitizer / ThreadSanitizer about the switch, and it swaps the C++
// runtime's per-thread exception state (__cxa_eh_globals), so a task suspended inside a catch
// block or during unwinding does not corrupt another task's exception handling.
//
// Internal: only the run loop uses this header.
#pragma once

#include <cstddef>
#include <vector>

#include <boost/context/detail/fcontext.hpp>

namespace trellis::internal {

// Default usable stack size of a task. Pages are touched lazily, so an idle task costs only
// the pages its frames actually used (a few KiB), not this.
inline constexpr std::size_t kStackSizeDefault = 256 * 1024;
inline constexpr std::size_t kStackSizeMin = 16 * 1024;
inline constexpr std::size_t kStackSizeMax = std::size_t{1} << 30;

struct Stack {
  char* mapping = nullptr;       // start of the mmap (the guard page is here)
  std::size_t mapping_size = 0;  // guard + usable
  std::size_t guard_size = 0;
  char* bottom() const noexcept { return mapping + guard_size; }  // lowest usable byte
  char* top() const noexcept { return mapping + mapping_size; }   // one past the highest
  std::size_t usable_size() const noexcept { return mapping_size - guard_size; }
  bool empty() const noexcept { return mapping == nullptr; }
};

// Per-thread pool of stacks. Stacks are carved out of slabs (one mmap for many stacks, so a
// run with 100k live tasks makes a few thousand system calls, not 300k) and never unmapped
// until the thread exits. A released stack stays "hot" (its touched pages resident, reused
// first) without a system call. trim(), called when a run ends, keeps kHotStacksMax hot and
// hands the pages of the others back to the kernel (one MADV_DONTNEED per run of adjacent
// stacks); those wait "cold" for reuse, keeping only address space.
// acquire() throws std::system_error, with advice, when no memory can be mapped.
class StackPool {
 public:
  static constexpr std::size_t kHotStacksMax = 4096;
  static constexpr std::size_t kSlabBytesTarget = std::size_t{16} << 20;
  static StackPool& for_this_thread();
  Stack acquire(std::size_t usable_size);
  void release(Stack stack) noexcept;
  void trim() noexcept;
  ~StackPool();

  struct Statistics {
    std::size_t slabs = 0;
    std::size_t hot = 0;
    std::size_t cold = 0;
    std::size_t fresh = 0;
  };
  Statistics statistics() const noexcept;

 private:
  struct Bucket {  // every stack of one usable size
    std::size_t usable_size;
    std::vector<Stack> hot;    // most recently released last
    std::vector<Stack> cold;   // pages returned to the kernel
    std::vector<Stack> fresh;  // never used yet
  };
  struct Slab {
    char* mapping;
    std::size_t size;
  };
  Bucket& bucket_for(std::size_t usable_size);
  void map_slab(Bucket& bucket);

  std::vector<Bucket> buckets_;
  std::vector<Slab> slabs_;
};

// Round a requested stack size to whole pages within [kStackSizeMin, kStackSizeMax].
std::size_t normalize_stack_size(std::size_t requested) noexcept;

// A suspended point of execution. The main context of a thread (the run loop) is one whose
// stack fields stay empty until the first switch away from it records them.
struct ExecutionContext {
  boost::context::detail::fcontext_t fctx = nullptr;
  // Stack bounds, for AddressSanitizer.
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
  bool owns_tsan_fiber = false;
  // This thread's __cxa_eh_globals (looked up once: the lookup is a call into libstdc++ and
  // a TLS access), and their saved values while this context is suspended.
  void* eh_globals = nullptr;
  void* eh_caught_exceptions = nullptr;
  unsigned int eh_uncaught_exceptions = 0;
  // The body run by a fiber context (unused for a thread's main context).
  ExecutionContext* (*body)(void* arg) = nullptr;
  void* body_arg = nullptr;
};

// Makes `context` a fresh fiber on `stack` that will call body(arg) when first switched to.
// body returns the context to switch to when it is done; the fiber leaves for good, and the
// owner must call destroy_fiber_context() before reusing the stack. body must not let an
// exception escape.
// `thread_context` is the calling thread's main context (for its per-thread lookups).
void make_fiber_context(ExecutionContext& context, const Stack& stack,
                        ExecutionContext* (*body)(void*), void* arg,
                        const ExecutionContext& thread_context);
void destroy_fiber_context(ExecutionContext& context) noexcept;

// Initializes the context object for the calling thread's own stack (the run loop).
void make_thread_context(ExecutionContext& context) noexcept;

// Suspends `from` (the running context) and resumes `to`. Returns when something switches
// back to `from`.
void switch_context(ExecutionContext& from, ExecutionContext& to) noexcept;

// Installs (once per thread) the alternate signal stack and the SIGSEGV handler that reports
// a task's stack overflow by name. `guard_lookup` is asked, inside the signal handler, whether
// a faulting address lies in the running task's guard page and for its name.
struct OverflowInfo {
  const char* task_name;
  std::size_t stack_size;
};
using GuardLookup = bool (*)(const void* fault_address, OverflowInfo* info) noexcept;
void install_stack_overflow_handler(GuardLookup guard_lookup);

}  // namespace trellis::internal
