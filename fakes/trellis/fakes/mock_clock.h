// trellis/fakes/mock_clock.h — a clock for tests: time stands still unless told otherwise.
//
//   trellis::fakes::MockClock clock;
//   clock.set_autojump_threshold(trellis::Duration::zero());
//   trellis::run([] {
//     trellis::sleep(std::chrono::hours(1));  // returns at once; current_time() == 1h
//   }, {.clock = &clock});
//
// Virtual time starts at 0 and runs at `rate` times real time (default 0: frozen). jump(d)
// moves it forward. With an autojump threshold, once every task has been blocked for that
// much *real* time, the run loop jumps the clock straight to the next deadline — a test of a
// one-hour timeout runs in microseconds. Matches Trio's trio.testing.MockClock.
//
// Not thread-safe: use it from the run's thread.
#pragma once

#include "trellis/core/clock.h"
#include "trellis/posix/system_clock.h"

namespace trellis::fakes {

class MockClock final : public Clock {
 public:
  MockClock() = default;

  // rate >= 0 (else std::invalid_argument). Re-bases so that the current time is continuous.
  void set_rate(double rate);
  double rate() const noexcept { return rate_; }
  // d >= 0 (else std::invalid_argument); Duration::max() disables autojump (the default).
  void set_autojump_threshold(Duration d);
  // d >= 0 (else std::invalid_argument: time can't go backwards).
  void jump(Duration d);

  void start() override {}
  Time now() const override;
  Duration sleep_time_until(Time deadline) const override;
  Duration autojump_threshold() const override { return autojump_threshold_; }
  void jump_to(Time next_deadline) override;
  bool advances_on_its_own() const override { return rate_ > 0; }

 private:
  Duration real_now() const { return real_.now().time_since_epoch(); }

  posix::SystemClock real_;
  double rate_ = 0.0;
  Duration autojump_threshold_ = Duration::max();
  // Virtual time = virtual_base_ + rate_ * (real now - real_base_).
  Duration virtual_base_ = Duration::zero();
  Duration real_base_ = Duration::zero();
};

}  // namespace trellis::fakes
