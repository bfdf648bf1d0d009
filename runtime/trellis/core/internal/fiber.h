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

#include "trellis/base/assert.h"
#include "trellis/base/force_inline.h"
#include "trellis/base/sanitizers.h"

#if defined(TRELLIS_HAVE_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#elif defined(TRELLIS_WEAK_FIBER_HOOKS)
// A build whose own code is not instrumented by AddressSanitizer but whose programs may link
// its runtime (the fuzz preset instruments only the fuzzers and the sources they test) still
// tells ASan about every switch when that runtime is there: ASan needs each stack's bounds to
// clear the frames an exception unwinds on it, and without them the stale redzones are
// reported against whatever runs on that stack next. Weak: absent, they are null.
extern "C" {
[[gnu::weak]] void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                                  std::size_t size);
[[gnu::weak]] void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                   std::size_t* size_old);
}
#endif
#if defined(TRELLIS_HAVE_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

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
  // What every switch reads and writes comes first, in 32 bytes (TaskRun puts them in the
  // cache line of a task's parking state).
  boost::context::detail::fcontext_t fctx = nullptr;
  // This thread's __cxa_eh_globals (looked up once: the lookup is a call into libstdc++ and
  // a TLS access), and their saved values while this context is suspended.
  void* eh_globals = nullptr;
  void* eh_caught_exceptions = nullptr;
  unsigned int eh_uncaught_exceptions = 0;
  // Stack bounds, for AddressSanitizer.
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
  bool owns_tsan_fiber = false;
  // The body run by a fiber context (unused for a thread's main context).
  ExecutionContext* (*body)(void* arg) = nullptr;
  void* body_arg = nullptr;
};

// Makes `context` a fresh fiber on `stack` that will call body(arg) when first switched to.
// `stack` may be the lower part of a pooled stack (its top 64-byte aligned).
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

// ---- switching (inline: see switch_context) ------------------------------------------------

// Mirrors the layout of libsupc++'s __cxa_eh_globals (unwind-cxx.h) on every non-ARM-EH
// target: the chain of exceptions currently caught, and the count of uncaught ones.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

struct SwitchRecord {
  ExecutionContext* from;
  ExecutionContext* to;
};

// Whether switches are reported to AddressSanitizer (see TRELLIS_WEAK_FIBER_HOOKS above).
TRELLIS_FORCE_INLINE inline bool asan_fiber_hooks() noexcept {
#if defined(TRELLIS_HAVE_ASAN)
  return true;
#elif defined(TRELLIS_WEAK_FIBER_HOOKS)
  return __sanitizer_start_switch_fiber != nullptr && __sanitizer_finish_switch_fiber != nullptr;
#else
  return false;
#endif
}

// Runs in `self` right after a switch into it completes.
inline void arrive(ExecutionContext& self, ExecutionContext& from,
                   boost::context::detail::fcontext_t from_fctx) noexcept {
  from.fctx = from_fctx;
#if defined(TRELLIS_HAVE_ASAN) || defined(TRELLIS_WEAK_FIBER_HOOKS)
  if (asan_fiber_hooks()) {
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(self.asan_fake_stack, &bottom, &size);
    if (from.stack_bottom == nullptr) {
      from.stack_bottom = bottom;
      from.stack_size = size;
    }
  }
#endif
  auto* globals = static_cast<EhGlobals*>(self.eh_globals);
  globals->caught_exceptions = self.eh_caught_exceptions;
  globals->uncaught_exceptions = self.eh_uncaught_exceptions;
}

// `finishing`: `from` will never run again (its fake stack may be freed).
inline void depart(ExecutionContext& from, ExecutionContext& to, bool finishing) noexcept {
  auto* globals = static_cast<EhGlobals*>(from.eh_globals);
  from.eh_caught_exceptions = globals->caught_exceptions;
  from.eh_uncaught_exceptions = globals->uncaught_exceptions;
#if defined(TRELLIS_HAVE_ASAN) || defined(TRELLIS_WEAK_FIBER_HOOKS)
  if (asan_fiber_hooks()) {
    __sanitizer_start_switch_fiber(finishing ? nullptr : &from.asan_fake_stack, to.stack_bottom,
                                   to.stack_size);
  }
#endif
  (void)finishing;
#if defined(TRELLIS_HAVE_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  (void)to;
}

// Suspends `from` (the running context) and resumes `to`. Returns when something switches
// back to `from`. Inline, with its callers in the run loop forced inline around it: after a
// switch, every return between jump_fcontext and the resumed task's code mispredicts (the
// return-stack buffer holds the other task's frames), so each call level here costs a
// mispredicted return on every task switch.
TRELLIS_FORCE_INLINE inline void switch_context(ExecutionContext& from,
                                                ExecutionContext& to) noexcept {
  TRELLIS_ASSERT(&from != &to);
  TRELLIS_ASSERT(to.fctx != nullptr);
  TRELLIS_ASSERT(from.eh_globals == to.eh_globals);  // contexts never cross threads
  depart(from, to, /*finishing=*/false);
  SwitchRecord record{&from, &to};
  const boost::context::detail::transfer_t transfer =
      boost::context::detail::jump_fcontext(to.fctx, &record);
  // Back in `from`: whoever switched to us passed its own record.
  auto* incoming = static_cast<SwitchRecord*>(transfer.data);
  TRELLIS_ASSERT(incoming->to == &from);
  arrive(from, *incoming->from, transfer.fctx);
}

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
