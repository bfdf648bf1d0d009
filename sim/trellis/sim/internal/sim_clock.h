// trellis/sim/internal/sim_clock.h — the world's virtual clock. It only reads: virtual time
// advances in exactly one place, the world's event queue (SimEventLoop::wait_and_dispatch),
// which moves it straight to the next event or deadline once every task is blocked.
#pragma once

#include "trellis/base/assert.h"
#include "trellis/core/clock.h"

namespace trellis::sim::internal {

class SimClock final : public Clock {
 public:
  void start() override {}
  Time now() const override { return now_; }
  // The run loop passes this to the backend as its timeout: for the simulator's backend a
  // timeout is virtual time, which it then advances by.
  Duration sleep_time_until(Time deadline) const override {
    return deadline <= now_ ? Duration::zero() : deadline - now_;
  }
  bool advances_on_its_own() const override { return true; }

  // The event queue's one write. Never backwards.
  void advance_to(Time t) {
    TRELLIS_ASSERT(t >= now_);
    now_ = t;
  }

 private:
  Time now_{};
};

}  // namespace trellis::sim::internal
