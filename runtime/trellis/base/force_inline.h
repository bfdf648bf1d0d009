// trellis/base/force_inline.h — TRELLIS_FORCE_INLINE, for the schedule point's hot path.
//
// A task resumes inside the function that switched away from it, and every return between
// that switch and the task's own code then mispredicts (core/lowlevel_inline.h says why).
// So the hot path of a schedule point (the Runner's park, yield and switch, and the memory
// channel operations built on them) is forced inline into its caller:
//
//   TRELLIS_FORCE_INLINE inline void Runner::yield() { ... }
//
// Under AddressSanitizer or ThreadSanitizer it is a plain hint: there the cost of a
// mispredicted return is noise beside the instrumentation, while forcing every channel
// operation inline into instrumented callers more than doubled their compile time
// (tests/trio/memory_channel_test.cc under ASan: 78 s forced, 33 s not). The code, and so
// its behaviour, is the same either way.
#pragma once

#include "trellis/base/sanitizers.h"

#if defined(TRELLIS_HAVE_ASAN) || defined(TRELLIS_HAVE_TSAN)
#define TRELLIS_FORCE_INLINE
#else
#define TRELLIS_FORCE_INLINE [[gnu::always_inline]]
#endif
