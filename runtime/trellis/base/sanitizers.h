// trellis/base/sanitizers.h — which sanitizer instruments the code being compiled.
//
// TRELLIS_HAVE_ASAN / TRELLIS_HAVE_TSAN are defined (as 1) when this translation unit is
// compiled with AddressSanitizer / ThreadSanitizer, under GCC (__SANITIZE_*__) or Clang
// (__has_feature). The fiber switch reports to them (core/internal/fiber.h), and
// TRELLIS_FORCE_INLINE relaxes to a hint under them (base/force_inline.h).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define TRELLIS_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRELLIS_HAVE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define TRELLIS_HAVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TRELLIS_HAVE_TSAN 1
#endif
#endif
