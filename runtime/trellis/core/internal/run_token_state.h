// trellis/core/internal/run_token_state.h — what a RunToken points to: the run's queue of
// closures from other threads. Internal.
//
// The Runner creates one per run, drains it on the loop thread after every wait and closes
// it when the run ends; tokens (and worker threads) share it, so it outlives the run. All of
// it is a ClosureQueue (trellis/base/closure_queue.h) that wakes the run's backend: post(),
// drain(), empty(), close() and closed() keep that queue's contracts, including what happens
// when a closure throws.
#pragma once

#include "trellis/base/closure_queue.h"
#include "trellis/core/backend.h"

namespace trellis::internal {

class RunTokenState final : public ClosureQueue {
 public:
  // The backend must outlive close() (it is never woken after that).
  explicit RunTokenState(Backend& backend)
      : ClosureQueue([&backend] { backend.wake_from_any_thread(); }) {}
};

}  // namespace trellis::internal
