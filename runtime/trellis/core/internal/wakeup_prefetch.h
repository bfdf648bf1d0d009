// trellis/core/internal/wakeup_prefetch.h — start loading what the next timer's expiry will
// touch, while the tasks woken now run.
//
// Internal: the run loop calls it after every expiry. With 100k sleepers, the next sleeper's
// task and stack are cold memory (cache and TLB misses), and its wake-up touches two places:
// - its owner: a task's first cache lines (task.h orders the fields a wake-up touches first),
//   or a cancel scope;
// - for a sleeping task, the top of its stack: the registers it saved when it switched out
//   and the frames its wake-up returns through, up to and past its timer, which lives in the
//   sleep_until() frame.
// Where the timer lies above the saved registers depends on how the compiler laid out the
// frames between them, so it is not assumed: every sleeper reports it when it wakes (learn),
// and a distance outside kTimerAboveRegistersMax (or none learned yet) falls back to the
// timer's own lines only. A prefetch never faults, so a wrong guess (a cancel scope's timer,
// whose owner is not a task) costs a few useless loads, never correctness.
//
// Benchmark anchor: BM_Trellis_TimerMarginal/tasks:100000 (bench/README.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "trellis/base/assert.h"

namespace trellis::internal {

class WakeupPrefetch {
 public:
  // Lines of the owner to load: a whole task (task.h), or the start of a cancel scope.
  static constexpr std::size_t kOwnerBytes = 256;
  // Lines above the timer to load: the rest of sleep_until()'s frame and its callers'.
  static constexpr std::size_t kAboveTimerBytes = 192;
  // A learned distance beyond this is not a compact frame chain (a sanitizer's fake stack,
  // say): then only the timer's lines are loaded.
  static constexpr std::ptrdiff_t kTimerAboveRegistersMax = 1024;
  static constexpr std::size_t kLineBytes = 64;

  // A sleeper woke: its timer lay at `timer`, its registers were saved at `registers`.
  void learn(const void* timer, const void* registers) noexcept {
    timer_above_registers_ = static_cast<const char*>(timer) - static_cast<const char*>(registers);
  }

  // The stack lines a wake-up through `timer` returns through: [low, high), line-aligned
  // bounds not needed (a prefetch loads the line holding the address).
  struct Span {
    std::uintptr_t low;
    std::uintptr_t high;
  };
  Span stack_span(const void* timer) const noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(timer);
    std::uintptr_t low = address;
    if (timer_above_registers_ > 0 && timer_above_registers_ <= kTimerAboveRegistersMax) {
      low = address - static_cast<std::uintptr_t>(timer_above_registers_);
    }
    return Span{low, address + kAboveTimerBytes + 1};
  }

  // The next expiry is `timer`'s, owned by `owner`.
  void prefetch_next(const void* owner, const void* timer) const noexcept {
    TRELLIS_ASSERT(owner != nullptr && timer != nullptr);
    const auto* owner_bytes = static_cast<const char*>(owner);
    for (std::size_t at = 0; at < kOwnerBytes; at += kLineBytes) {
      __builtin_prefetch(owner_bytes + at);
    }
    // The timer's own line first: it starts the page walk (with 100k sleepers the costlier
    // half of the miss) that the stack's other lines then share.
    __builtin_prefetch(timer);
    const Span span = stack_span(timer);
    const auto address = reinterpret_cast<std::uintptr_t>(timer);
    for (std::uintptr_t at = span.low; at < address; at += kLineBytes) {
      __builtin_prefetch(reinterpret_cast<const void*>(at));
    }
    for (std::uintptr_t at = address + kLineBytes; at < span.high; at += kLineBytes) {
      __builtin_prefetch(reinterpret_cast<const void*>(at));
    }
  }

  // The distance last learned (0: none yet). For tests.
  std::ptrdiff_t timer_above_registers() const noexcept { return timer_above_registers_; }

 private:
  std::ptrdiff_t timer_above_registers_ = 0;
};

}  // namespace trellis::internal
