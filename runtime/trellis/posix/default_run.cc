// run()'s defaults: the real clock, the epoll backend and Trio's randomized batch order
// seeded afresh. They live here, not in core/, because the core knows only the Clock and
// Backend interfaces (core/run.h declares run_main; internal::run_with() is the core's loop).
#include <atomic>
#include <cstdint>
#include <memory>

#include "trellis/base/prng.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/posix/epoll_backend.h"
#include "trellis/posix/internal/fresh_seed.h"
#include "trellis/posix/system_clock.h"

namespace trellis::internal {

std::uint64_t fresh_schedule_seed() {
  // Trio seeds its batch order differently in every run; so do we, from the real clock.
  // (Runs start on any thread: the counter is atomic.)
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = posix::SystemClock::entropy() + ++counter;
  return Prng::split_mix64(x);
}

void run_main(FunctionRef<void()> main, const RunOptions& options, const std::type_info& type) {
  if (lowlevel::in_run()) throw UsageError("Attempted to call run() from inside a run()");
  std::unique_ptr<posix::SystemClock> own_clock;
  std::unique_ptr<posix::EpollBackend> own_backend;
  std::unique_ptr<TrioPolicy> own_policy;
  Clock* clock = options.clock;
  if (clock == nullptr) clock = (own_clock = std::make_unique<posix::SystemClock>()).get();
  Backend* backend = options.backend;
  if (backend == nullptr) backend = (own_backend = std::make_unique<posix::EpollBackend>()).get();
  SchedulePolicy* policy = options.policy;
  if (policy == nullptr) {
    own_policy = std::make_unique<TrioPolicy>(
        options.schedule_seed.has_value() ? *options.schedule_seed : fresh_schedule_seed());
    policy = own_policy.get();
  }
  run_with(main, options, *clock, *backend, *policy, type);
}

}  // namespace trellis::internal
