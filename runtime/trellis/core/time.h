// trellis/core/time.h — Duration and Time, the units every Clock speaks.
//
// Time is a point on the run's Clock (not on std::chrono::steady_clock): a MockClock starts at
// zero, the real clock starts at an arbitrary large offset. Comparing a Time with a reading of
// another clock is meaningless, so the two are distinct types. Time::max() means "no deadline".
#pragma once

#include <chrono>
#include <cstdint>

namespace trellis {

using Duration = std::chrono::nanoseconds;

// The tag type naming the run's clock for std::chrono::time_point. It has no now(): time is
// read through trellis::current_time() or a Clock object.
struct RunClockTag {
  using duration = Duration;
  using rep = Duration::rep;
  using period = Duration::period;
  static constexpr bool is_steady = true;
};

using Time = std::chrono::time_point<RunClockTag, Duration>;

inline constexpr Time kNoDeadline = Time::max();

// t + d, saturating at Time::max() / Time::min() instead of overflowing.
constexpr Time saturating_add(Time t, Duration d) noexcept {
  using Rep = Duration::rep;
  const Rep base = t.time_since_epoch().count();
  Rep sum = 0;
  if (__builtin_add_overflow(base, d.count(), &sum)) {
    return d.count() > 0 ? Time::max() : Time::min();
  }
  return Time(Duration(sum));
}

// b - a, saturating.
constexpr Duration saturating_sub(Time b, Time a) noexcept {
  using Rep = Duration::rep;
  Rep diff = 0;
  if (__builtin_sub_overflow(b.time_since_epoch().count(), a.time_since_epoch().count(), &diff)) {
    return b > a ? Duration::max() : Duration::min();
  }
  return Duration(diff);
}

}  // namespace trellis
