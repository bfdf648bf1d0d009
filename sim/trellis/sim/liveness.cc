#include "trellis/sim/liveness.h"

#include "trellis/core/cancel_scope.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"

namespace trellis::sim {

void require_progress(Duration within, const std::string& what, const std::function<bool()>& done,
                      Duration tick) {
  if (within < Duration::zero()) throw std::invalid_argument("require_progress: within < 0");
  if (tick <= Duration::zero()) throw std::invalid_argument("require_progress: tick <= 0");
  const Time start = current_time();
  const Time deadline = start + within;
  while (!done()) {
    if (current_time() >= deadline) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(within).count();
      throw LivenessViolation("liveness: no progress within " + std::to_string(ms) +
                              " ms of virtual time: " + what + " did not happen. Tasks then:\n" +
                              lowlevel::dump_task_tree());
    }
    sleep(std::min(tick, deadline - current_time()));
  }
}

}  // namespace trellis::sim
