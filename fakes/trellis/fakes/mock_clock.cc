#include "trellis/fakes/mock_clock.h"

#include <cmath>
#include <stdexcept>

#include "trellis/base/assert.h"

namespace trellis::fakes {

Time MockClock::now() const {
  if (rate_ == 0.0) return Time(virtual_base_);
  const double elapsed = static_cast<double>((real_now() - real_base_).count()) * rate_;
  return Time(virtual_base_ + Duration(static_cast<Duration::rep>(elapsed)));
}

void MockClock::set_rate(double rate) {
  if (!(rate >= 0.0) || std::isinf(rate)) {
    throw std::invalid_argument("MockClock::set_rate: rate must be >= 0 and finite");
  }
  virtual_base_ = now().time_since_epoch();
  real_base_ = real_now();
  rate_ = rate;
}

void MockClock::set_autojump_threshold(Duration d) {
  if (d < Duration::zero()) {
    throw std::invalid_argument("MockClock::set_autojump_threshold: must be >= 0");
  }
  autojump_threshold_ = d;
}

void MockClock::jump(Duration d) {
  if (d < Duration::zero()) throw std::invalid_argument("MockClock::jump: time can't go backwards");
  virtual_base_ += d;
}

Duration MockClock::sleep_time_until(Time deadline) const {
  const Duration remaining = saturating_sub(deadline, now());
  if (remaining <= Duration::zero()) return Duration::zero();
  if (rate_ > 0.0) {
    const double real = static_cast<double>(remaining.count()) / rate_;
    if (real >= static_cast<double>(Duration::max().count())) return Duration::max();
    return Duration(static_cast<Duration::rep>(std::ceil(real)));
  }
  return Duration::max();
}

void MockClock::jump_to(Time next_deadline) {
  const Duration distance = saturating_sub(next_deadline, now());
  TRELLIS_MAYBE(distance <= Duration::zero());
  if (distance > Duration::zero()) jump(distance);
}

}  // namespace trellis::fakes
