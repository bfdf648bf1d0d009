#include "trellis/core/internal/fiber.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cxxabi.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include "trellis/base/assert.h"

// Linux >= 6.13 can install guard pages inside a mapping without splitting it into separate
// VMAs (so 100k stacks do not exhaust vm.max_map_count). Older kernels reject the advice with
// EINVAL and we fall back to mprotect.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace trellis::internal {
namespace {

namespace ctx = boost::context::detail;

EhGlobals* eh_globals() noexcept {
  return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::atomic<bool> guard_advice_works{true};

void install_guard(char* mapping, std::size_t guard_size) {
  if (guard_advice_works.load(std::memory_order_relaxed)) {
    if (::madvise(mapping, guard_size, MADV_GUARD_INSTALL) == 0) return;
    guard_advice_works.store(false, std::memory_order_relaxed);
  }
  if (::mprotect(mapping, guard_size, PROT_NONE) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "trellis: mprotect of a stack guard page failed");
  }
}

void fiber_trampoline(ctx::transfer_t transfer) noexcept {
  auto* record = static_cast<SwitchRecord*>(transfer.data);
  ExecutionContext& self = *record->to;
  arrive(self, *record->from, transfer.fctx);
  // The body is done: leave for good. Nothing switches back here.
  ExecutionContext& target = *self.body(self.body_arg);
  TRELLIS_ASSERT(&target != &self);
  depart(self, target, /*finishing=*/true);
  SwitchRecord last{&self, &target};
  ctx::jump_fcontext(target.fctx, &last);
  TRELLIS_ASSERT(false && "a finished fiber was resumed");
}

// --- stack overflow reporting -------------------------------------------------------------

std::atomic<GuardLookup> overflow_guard_lookup{nullptr};
struct sigaction previous_segv_action;
std::atomic<bool> segv_handler_installed{false};
thread_local bool alt_stack_installed = false;
// Kept reachable (for leak checkers): a thread's alternate stack must outlive every signal it
// may take, so it is never freed.
thread_local void* alt_stack_memory = nullptr;

void write_all(const char* text) noexcept {
  std::size_t length = std::strlen(text);
  while (length > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, length);
    if (written <= 0) return;
    text += written;
    length -= static_cast<std::size_t>(written);
  }
}

void segv_handler(int signal_number, siginfo_t* info, void* context) {
  const GuardLookup lookup = overflow_guard_lookup.load();
  OverflowInfo overflow{nullptr, 0};
  if (lookup != nullptr && lookup(info->si_addr, &overflow)) {
    char size_text[32];
    std::snprintf(size_text, sizeof size_text, "%zu", overflow.stack_size / 1024);
    write_all("trellis: stack overflow in task '");
    write_all(overflow.task_name != nullptr ? overflow.task_name : "?");
    write_all("' (stack size ");
    write_all(size_text);
    write_all(
        " KiB); give it a larger stack with SpawnOptions::stack_size or "
        "RunOptions::stack_size\n");
    ::signal(SIGABRT, SIG_DFL);
    ::abort();
  }
  // Not ours: hand the signal to whoever had it before.
  if (previous_segv_action.sa_flags & SA_SIGINFO) {
    if (previous_segv_action.sa_sigaction != nullptr) {
      previous_segv_action.sa_sigaction(signal_number, info, context);
      return;
    }
  } else if (previous_segv_action.sa_handler != SIG_DFL &&
             previous_segv_action.sa_handler != SIG_IGN) {
    previous_segv_action.sa_handler(signal_number);
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);  // re-executing the faulting instruction now kills us
}

}  // namespace

std::size_t normalize_stack_size(std::size_t requested) noexcept {
  std::size_t size = requested == 0 ? kStackSizeDefault : requested;
  if (size < kStackSizeMin) size = kStackSizeMin;
  if (size > kStackSizeMax) size = kStackSizeMax;
  const std::size_t page = page_size();
  return (size + page - 1) / page * page;
}

StackPool& StackPool::for_this_thread() {
  thread_local StackPool pool;
  return pool;
}

StackPool::Bucket& StackPool::bucket_for(std::size_t usable_size) {
  for (Bucket& bucket : buckets_) {
    if (bucket.usable_size == usable_size) return bucket;
  }
  buckets_.push_back(Bucket{usable_size, {}, {}, {}});
  return buckets_.back();
}

void StackPool::map_slab(Bucket& bucket) {
  const std::size_t guard = page_size();
  const std::size_t stride = bucket.usable_size + guard;
  const std::size_t count = std::max<std::size_t>(1, kSlabBytesTarget / stride);
  const std::size_t total = stride * count;
  slabs_.reserve(slabs_.size() + 1);
  bucket.fresh.reserve(bucket.fresh.size() + count);
  void* mapping = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping == MAP_FAILED) {
    const int error = errno;
    throw std::system_error(error, std::generic_category(),
                            "trellis: cannot map " + std::to_string(total >> 20) +
                                " MiB for task stacks (address space or memory limits?)");
  }
  auto* base = static_cast<char*>(mapping);
  try {
    // Highest addresses first, so that the first stack handed out is the lowest one.
    for (std::size_t i = count; i > 0; --i) {
      Stack stack{base + (i - 1) * stride, stride, guard};
      install_guard(stack.mapping, guard);
      bucket.fresh.push_back(stack);
    }
  } catch (...) {
    std::erase_if(bucket.fresh, [&](const Stack& stack) {
      return stack.mapping >= base && stack.mapping < base + total;
    });
    ::munmap(mapping, total);
    throw;
  }
  slabs_.push_back(Slab{base, total});
}

Stack StackPool::acquire(std::size_t usable_size) {
  Bucket& bucket = bucket_for(usable_size);
  std::vector<Stack>* source = !bucket.hot.empty()    ? &bucket.hot
                               : !bucket.cold.empty() ? &bucket.cold
                                                      : &bucket.fresh;
  if (source->empty()) {
    map_slab(bucket);
    source = &bucket.fresh;
  }
  TRELLIS_ASSERT(!source->empty());
  const Stack stack = source->back();
  source->pop_back();
  TRELLIS_ASSERT(stack.usable_size() == usable_size);
  return stack;
}

void StackPool::release(Stack stack) noexcept {
  TRELLIS_ASSERT(!stack.empty());
  Bucket* bucket = nullptr;
  for (Bucket& candidate : buckets_) {
    if (candidate.usable_size == stack.usable_size()) bucket = &candidate;
  }
  TRELLIS_ASSERT(bucket != nullptr);
  // The vectors never shrink, and every stack came out of one of them, so push_back never
  // needs memory beyond the capacity reserved when the stack's slab was mapped... except for
  // hot and cold, which grow: reserve failures there fall back to the other list.
  try {
    bucket->hot.push_back(stack);
  } catch (...) {
    // Out of memory for the bookkeeping: the stack's address space is lost until the thread
    // exits (its slab is still unmapped then).
  }
}

void StackPool::trim() noexcept {
  for (Bucket& bucket : buckets_) {
    if (bucket.hot.size() <= kHotStacksMax) continue;
    // The least recently released stacks go cold. Sorting them by address turns stacks that
    // sit side by side in a slab into one range, released with one system call.
    const auto first_cold = bucket.hot.begin();
    const auto last_cold = bucket.hot.end() - static_cast<std::ptrdiff_t>(kHotStacksMax);
    std::sort(first_cold, last_cold,
              [](const Stack& a, const Stack& b) { return a.mapping < b.mapping; });
    char* range_begin = nullptr;
    char* range_end = nullptr;
    const auto flush = [&] {
      if (range_begin == nullptr) return;
      // Guard pages inside the range keep their guard (MADV_DONTNEED preserves guard
      // regions; a PROT_NONE page just stays unpopulated).
      const int result =
          ::madvise(range_begin, static_cast<std::size_t>(range_end - range_begin), MADV_DONTNEED);
      TRELLIS_MAYBE(result != 0);
    };
    try {
      bucket.cold.reserve(bucket.cold.size() + static_cast<std::size_t>(last_cold - first_cold));
    } catch (...) {
      continue;
    }
    for (auto it = first_cold; it != last_cold; ++it) {
      if (it->mapping != range_end) {
        flush();
        range_begin = it->bottom();
      }
      range_end = it->top();
      bucket.cold.push_back(*it);
    }
    flush();
    bucket.hot.erase(first_cold, last_cold);
  }
}

StackPool::~StackPool() {
  for (const Slab& slab : slabs_) {
    const int result = ::munmap(slab.mapping, slab.size);
    TRELLIS_ASSERT(result == 0);
  }
}

StackPool::Statistics StackPool::statistics() const noexcept {
  Statistics stats;
  stats.slabs = slabs_.size();
  for (const Bucket& bucket : buckets_) {
    stats.hot += bucket.hot.size();
    stats.cold += bucket.cold.size();
    stats.fresh += bucket.fresh.size();
  }
  return stats;
}

void make_fiber_context(ExecutionContext& context, const Stack& stack,
                        ExecutionContext* (*body)(void*), void* arg,
                        const ExecutionContext& thread_context) {
  TRELLIS_ASSERT(!stack.empty());
  TRELLIS_ASSERT(body != nullptr);
  // (Its top may sit below the stack's real top: the owner may keep data above the frames.)
  TRELLIS_ASSERT(reinterpret_cast<std::uintptr_t>(stack.top()) % 64 == 0);
  context = ExecutionContext{};
  context.fctx = ctx::make_fcontext(stack.top(), stack.usable_size(), &fiber_trampoline);
  context.stack_bottom = stack.bottom();
  context.stack_size = stack.usable_size();
  context.body = body;
  context.body_arg = arg;
  context.eh_globals = thread_context.eh_globals;
  TRELLIS_ASSERT(context.eh_globals != nullptr);
#if defined(TRELLIS_HAVE_TSAN)
  context.tsan_fiber = __tsan_create_fiber(0);
  context.owns_tsan_fiber = true;
#endif
}

void destroy_fiber_context(ExecutionContext& context) noexcept {
#if defined(TRELLIS_HAVE_TSAN)
  if (context.owns_tsan_fiber) __tsan_destroy_fiber(context.tsan_fiber);
  context.owns_tsan_fiber = false;
#endif
  // (Nothing else to undo: the stack is the owner's. The context is usually destroyed next,
  // with the block at the top of the task's stack that holds it.)
  context.fctx = nullptr;
}

void make_thread_context(ExecutionContext& context) noexcept {
  context = ExecutionContext{};
  context.eh_globals = eh_globals();
#if defined(TRELLIS_HAVE_TSAN)
  context.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void install_stack_overflow_handler(GuardLookup guard_lookup) {
  overflow_guard_lookup.store(guard_lookup);
  if (!alt_stack_installed) {
    stack_t current{};
    if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) != 0) {
      constexpr std::size_t kAltStackSize = 64 * 1024;
      stack_t alt{};
      alt_stack_memory = ::operator new(kAltStackSize);
      alt.ss_sp = alt_stack_memory;
      alt.ss_size = kAltStackSize;
      alt.ss_flags = 0;
      if (::sigaltstack(&alt, nullptr) != 0) {
        ::operator delete(alt_stack_memory);
        alt_stack_memory = nullptr;
      }
    }
    alt_stack_installed = true;
  }
  bool expected = false;
  if (segv_handler_installed.compare_exchange_strong(expected, true)) {
    struct sigaction action {};
    action.sa_sigaction = &segv_handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGSEGV, &action, &previous_segv_action);
  }
}

}  // namespace trellis::internal
