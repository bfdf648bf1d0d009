#include "trellis/posix/system_clock.h"

#include <time.h>

#include "trellis/base/assert.h"
#include "trellis/base/prng.h"

namespace trellis::posix {
namespace {

Duration monotonic_now() noexcept {
  timespec ts{};
  const int result = ::clock_gettime(CLOCK_MONOTONIC, &ts);
  TRELLIS_ASSERT(result == 0);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

std::uint64_t SystemClock::entropy() noexcept {
  timespec mono{};
  timespec real{};
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  ::clock_gettime(CLOCK_REALTIME, &real);
  std::uint64_t x = static_cast<std::uint64_t>(mono.tv_nsec) ^
                    (static_cast<std::uint64_t>(real.tv_sec) << 20) ^
                    static_cast<std::uint64_t>(real.tv_nsec);
  return Prng::split_mix64(x);
}

SystemClock::SystemClock() {
  constexpr std::int64_t kOffsetMinSeconds = 10'000;
  constexpr std::int64_t kOffsetSpanSeconds = 190'000;
  Prng prng(entropy());
  offset_ = std::chrono::seconds(kOffsetMinSeconds) +
            std::chrono::milliseconds(prng.below(kOffsetSpanSeconds * 1000));
}

Time SystemClock::now() const {
  return Time(monotonic_now() + offset_);
}

Duration SystemClock::sleep_time_until(Time deadline) const {
  const Duration remaining = saturating_sub(deadline, now());
  return remaining < Duration::zero() ? Duration::zero() : remaining;
}

}  // namespace trellis::posix
