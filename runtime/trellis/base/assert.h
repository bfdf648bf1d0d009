// trellis/base/assert.h — always-on internal assertions.
//
// TRELLIS_ASSERT(cond) checks an internal invariant in every build (release included), like
// SEASTAR_ASSERT and TigerBeetle's ReleaseSafe asserts: a broken invariant is a bug in Trellis,
// and a crash with a precise message is far better than silent corruption. On failure it prints
// the condition, file:line, the function, and the name of the running task (when inside a run),
// then aborts.
//
// TRELLIS_ASSERT_SLOW(cond) is for O(n) checks (tree walks, queue membership); it is compiled in
// only when TRELLIS_SLOW_ASSERTS is defined (Debug and sanitizer builds define it).
//
// User misuse is never an assertion: it is an exception with a clear message.
#pragma once

namespace trellis::internal {

[[noreturn]] void assert_failed(const char* condition, const char* file, int line,
                                const char* function) noexcept;

// Returns the name of the task running on this thread, or nullptr outside a run. The runtime
// registers this hook so that the base layer need not know about tasks.
using TaskNameHook = const char* (*)() noexcept;
void set_assert_task_name_hook(TaskNameHook hook) noexcept;

}  // namespace trellis::internal

#define TRELLIS_ASSERT(cond)                                                   \
  do {                                                                         \
    if (__builtin_expect(!(cond), 0)) {                                        \
      ::trellis::internal::assert_failed(#cond, __FILE__, __LINE__, __func__); \
    }                                                                          \
  } while (false)

#if defined(TRELLIS_SLOW_ASSERTS)
#define TRELLIS_ASSERT_SLOW(cond) TRELLIS_ASSERT(cond)
#else
#define TRELLIS_ASSERT_SLOW(cond) \
  do {                            \
    (void)sizeof(!(cond));        \
  } while (false)
#endif

// Documents that both outcomes of `cond` are expected (TigerBeetle's `maybe`). Compiled out.
#define TRELLIS_MAYBE(cond) \
  do {                      \
    (void)sizeof(!(cond));  \
  } while (false)
