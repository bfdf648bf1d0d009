// trellis/core/clock.h — where a run gets its time (Trio's trio.abc.Clock, with autojump).
//
// The run loop is the only caller. It calls start() once before the first task runs, now()
// once per loop iteration when a deadline is pending, and sleep_time_until() to know how long
// the Backend may block. Autojump (Trio special-cases MockClock inside its loop) is part of
// the interface here: when every task has been blocked for autojump_threshold() of *real*
// time, the loop calls jump_to(next deadline). Implementations: SystemClock (posix/), the
// fakes' MockClock, the simulator's clock.
//
// None of these members is thread-safe unless an implementation says so; none is a
// checkpoint; none may throw Cancelled.
#pragma once

#include "trellis/core/time.h"

namespace trellis {

class Clock {
 public:
  virtual ~Clock() = default;

  // Called once, on the run's thread, before the first task runs.
  virtual void start() = 0;
  // The current time. Never decreases within a run.
  virtual Time now() const = 0;
  // How much *real* time the loop may block waiting for I/O before `deadline` is due.
  // Zero if it is due already; Duration::max() if it can never become due by itself.
  virtual Duration sleep_time_until(Time deadline) const = 0;
  // When every task has been blocked this long (real time), the loop calls jump_to().
  // Duration::max() disables autojump.
  virtual Duration autojump_threshold() const { return Duration::max(); }
  // Advance the clock to `next_deadline` (only called when autojump_threshold() is finite).
  virtual void jump_to(Time next_deadline) { (void)next_deadline; }
  // False if time stands still unless someone jumps it (a MockClock with rate 0 and no
  // autojump): then a run whose every task waits on a deadline is deadlocked, not sleeping.
  virtual bool advances_on_its_own() const { return true; }

  // Task time: what the running task's current_time(), sleeps and deadlines read. A
  // simulator gives each host its own clock here (sim/internal/host_clock.h); everyone
  // else, and the loop itself, reads now(), the default. Never decreases for a given task.
  virtual Time task_now() const { return now(); }
  // The loop time (now()'s) at which the running task's clock first reads `task_time`:
  // the deadline heap's key for a deadline the task sets. Saturates: the maximum Time maps to
  // itself.
  virtual Time loop_time_of(Time task_time) const { return task_time; }
};

}  // namespace trellis
