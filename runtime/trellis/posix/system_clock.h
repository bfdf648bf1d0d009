// trellis/posix/system_clock.h — the real clock: CLOCK_MONOTONIC plus a random offset.
//
// Like Trio's SystemClock, readings start at a random offset between 10,000 and 200,000
// seconds, so code that mixes run time with another clock's readings breaks at once instead
// of working by accident.
#pragma once

#include <cstdint>

#include "trellis/core/clock.h"

namespace trellis::posix {

class SystemClock final : public Clock {
 public:
  SystemClock();
  void start() override {}
  Time now() const override;
  Duration sleep_time_until(Time deadline) const override;

  // Bits from the real clock for seeding things that must differ between runs (the default
  // schedule order). Never used inside a simulation.
  static std::uint64_t entropy() noexcept;

 private:
  Duration offset_;
};

}  // namespace trellis::posix
