// trellis/fakes/wait_all_tasks_blocked.h — wait until every other task is stuck.
//
//   n.start_soon(worker);
//   trellis::fakes::wait_all_tasks_blocked();  // worker has run until it blocked
//
// Returns once no task is runnable, no I/O arrived and no deadline expired for `cushion` of
// real time (see lowlevel::wait_all_tasks_blocked). A checkpoint; cancellable.
#pragma once

#include "trellis/core/lowlevel.h"

namespace trellis::fakes {

inline void wait_all_tasks_blocked(Duration cushion = Duration::zero()) {
  lowlevel::wait_all_tasks_blocked(cushion);
}

}  // namespace trellis::fakes
