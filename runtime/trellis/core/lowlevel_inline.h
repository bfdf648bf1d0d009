// trellis/core/lowlevel_inline.h — the hottest of lowlevel.h's entry points, defined inline
// at their callers.
//
// Same names, same contracts as in lowlevel.h and run.h, in namespace lowlevel::fast. Use them
// where every operation is a schedule point and the operation itself is a few instructions
// (memory channels: a send or a receive is one); everything else uses lowlevel.h.
//
// Why inline matters here: a task resumes inside the function that switched away from it,
// and the CPU's return-stack buffer then holds the frames of the task that switched to it,
// so every function return between the switch and the caller's own code mispredicts (about
// 20 cycles each). lowlevel.h's functions are calls into the library, one such frame each;
// these put the switch straight into the caller's frame. In the fan-in benchmark (8 senders,
// one receiver, every message a send and a receive with a task switch after each) that was
// about half the time per message (bench/README.md, "Fan-in").
#pragma once

#include <string_view>

#include "trellis/base/force_inline.h"
#include "trellis/core/internal/runner.h"
#include "trellis/core/internal/runner_inline.h"
#include "trellis/core/lowlevel.h"

namespace trellis::lowlevel::fast {

// trellis::checkpoint_if_cancelled() (run.h).
TRELLIS_FORCE_INLINE inline void checkpoint_if_cancelled() {
  internal::Runner::require("checkpoint_if_cancelled()").checkpoint_if_cancelled();
}

// lowlevel::cancel_shielded_checkpoint().
TRELLIS_FORCE_INLINE inline void cancel_shielded_checkpoint() {
  internal::Runner::require("cancel_shielded_checkpoint()").yield();
}

// lowlevel::wait_task_rescheduled().
TRELLIS_FORCE_INLINE inline void wait_task_rescheduled(AbortFn abort, std::string_view what) {
  internal::Runner::require("wait_task_rescheduled()").park(abort, what);
}

// lowlevel::reschedule(task) (the plain wake-up; the one with an error stays in lowlevel.h).
TRELLIS_FORCE_INLINE inline void reschedule(Task& task) {
  internal::Runner::require("reschedule()").reschedule(task);
}

// lowlevel::current_task().
TRELLIS_FORCE_INLINE inline Task& current_task() {
  return internal::Runner::require("current_task()").require_task("current_task()");
}

}  // namespace trellis::lowlevel::fast
