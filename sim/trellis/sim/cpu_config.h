// trellis/sim/cpu_config.h — CpuConfig: virtual CPU time, so that races whose window takes
// no virtual time are reachable.
//
// What it models. On a real server every step of a task takes CPU time, so two requests
// arriving a millisecond apart are handled interleaved: the second handler runs while the
// first is still between its check and its act. In the simulator a step takes no virtual
// time by itself, and two messages almost never arrive at the same virtual instant, so
// without this the first handler always finishes a window made only of checkpoints before
// the second request exists, and no schedule policy can interleave them. With it, at each
// schedule point where a host's task stays runnable (checkpoint(),
// cancel_shielded_checkpoint()), the step just run took virtual CPU time with probability
// step_time_ppm: the task is held back for a duration uniform in [step_time_min,
// step_time_max] on the world's clock while other tasks and events go on (FoundationDB's
// simulator makes a yield take simulated time the same way). The draws come from a stream
// of their own, split from Config::seed, so the same seed holds the same steps.
//
// Only tasks of hosts are held (the driver and the world's own tasks run free); blocking
// waits (I/O, locks, sleeps) are not lengthened. step_time_ppm = 0 turns it off (every step
// instant, as before); step_time_max is best kept near the network's latency spread, so
// that requests arriving within it interleave.
#pragma once

#include <chrono>

#include "trellis/core/time.h"

namespace trellis::sim {

struct CpuConfig {
  unsigned step_time_ppm = 250'000;
  Duration step_time_min = std::chrono::microseconds(1);
  Duration step_time_max = std::chrono::milliseconds(2);
};

}  // namespace trellis::sim
