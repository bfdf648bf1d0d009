// trellis/sim/internal/sim_clock.h — the world's virtual clock. It only reads: virtual time
// advances in exactly one place, the world's event queue (SimEventLoop::wait_and_dispatch),
// which moves it straight to the next event or deadline once every task is blocked. A host's
// tasks read their host's clock over it (task_now, host_clock.h); the loop and the driver
// read the world's.
#pragma once

#include <functional>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/clock.h"
#include "trellis/sim/internal/host_clock.h"

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
  Time task_now() const override {
    const HostClock* clock = task_clock();
    return clock == nullptr ? now_ : clock->local(now_);
  }
  Time loop_time_of(Time task_time) const override {
    const HostClock* clock = task_clock();
    return clock == nullptr ? task_time : clock->world_time_of(task_time);
  }

  // The event queue's one write. Never backwards.
  void advance_to(Time t) {
    TRELLIS_ASSERT(t >= now_);
    now_ = t;
  }
  // Which clock the running task reads: its host's, or nullptr for the world's (set once by
  // the World).
  void set_task_clock(std::function<const HostClock*()> task_clock) {
    TRELLIS_ASSERT(!task_clock_);
    task_clock_ = std::move(task_clock);
  }

 private:
  const HostClock* task_clock() const {
    if (!task_clock_) return nullptr;
    const HostClock* clock = task_clock_();
    return clock == nullptr || clock->is_world_clock() ? nullptr : clock;
  }

  Time now_{};
  std::function<const HostClock*()> task_clock_;
};

}  // namespace trellis::sim::internal
