// trellis/sim/internal/host_clock.h — a simulated host's own clock, read over the world's.
//
// Real hosts' clocks disagree: each runs at its own rate (drift, parts per million) and
// starts from its own epoch (CLOCK_MONOTONIC counts from boot). A HostClock maps world time
// t to the host's time
//   local(t) = offset + t * (1'000'000 + drift_ppm) / 1'000'000
// and back (world_time_of: the first world time at which the host's clock reads a value, so
// a host's deadline never fires before its own clock reaches it). The world's event queue
// stays the one place time advances; a host's clock only reads it.
//
// Monotonic, like the runtime's Clock it stands behind: it never steps. A backward NTP step
// applies to wall clocks only, which the runtime does not read, and a forward step of a
// running host's monotonic clock would leave its pending deadlines keyed at the old rate in
// the run loop's heap; so drift and offset are configuration, fixed before the world runs.
#pragma once

#include <cstdint>

#include "trellis/base/assert.h"
#include "trellis/core/time.h"

namespace trellis::sim::internal {

class HostClock {
 public:
  static constexpr std::int64_t kMillion = 1'000'000;
  // Bound on |drift_ppm|: a clock runs at least at half and at most at one and a half times
  // the world's rate.
  static constexpr std::int64_t kDriftPpmMax = 500'000;

  HostClock() = default;
  HostClock(std::int64_t drift_ppm, Duration offset) : drift_ppm_(drift_ppm), offset_(offset) {
    TRELLIS_ASSERT(drift_ppm >= -kDriftPpmMax && drift_ppm <= kDriftPpmMax);
    TRELLIS_ASSERT(offset >= Duration::zero());
  }

  std::int64_t drift_ppm() const noexcept { return drift_ppm_; }
  Duration offset() const noexcept { return offset_; }
  bool is_world_clock() const noexcept { return drift_ppm_ == 0 && offset_ == Duration::zero(); }

  // The host's clock at world time `world` (>= world's epoch).
  Time local(Time world) const {
    if (world == Time::max()) return world;
    const __int128 scaled = static_cast<__int128>(world.time_since_epoch().count()) *
                            (kMillion + drift_ppm_) / kMillion;
    return Time(offset_ + Duration(saturate(scaled)));
  }
  // The first world time at which local() reads `local_time` or more (the epoch if it
  // already did then; Time::max() stays itself).
  Time world_time_of(Time local_time) const {
    if (local_time == Time::max()) return local_time;
    const __int128 since = static_cast<__int128>((local_time.time_since_epoch() - offset_).count());
    if (since <= 0) return Time{};
    const __int128 rate = kMillion + drift_ppm_;
    const Time world(Duration(saturate((since * kMillion + rate - 1) / rate)));
    TRELLIS_ASSERT(world == Time::max() || local(world) >= local_time);
    return world;
  }

 private:
  static Duration::rep saturate(__int128 x) {
    constexpr auto kMax = static_cast<__int128>(Duration::max().count());
    return static_cast<Duration::rep>(x > kMax ? kMax : x);
  }

  std::int64_t drift_ppm_ = 0;
  Duration offset_ = Duration::zero();
};

}  // namespace trellis::sim::internal
