#include "trellis/sim/internal/host_cpu_policy.h"

#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {

HostCpuPolicy::HostCpuPolicy(SchedulePolicy& inner, const CpuConfig& config, std::uint64_t seed,
                             std::function<bool()> in_host)
    : inner_(inner), config_(config), prng_(seed), in_host_(std::move(in_host)) {
  if (config_.step_time_ppm > kPpm) {
    throw std::invalid_argument("sim::Config: cpu.step_time_ppm above 1,000,000");
  }
  if (config_.step_time_min < Duration::zero() || config_.step_time_min > config_.step_time_max) {
    throw std::invalid_argument("sim::Config: cpu.step_time_min must be in [0, step_time_max]");
  }
  TRELLIS_ASSERT(in_host_ != nullptr);
}

Duration HostCpuPolicy::hold_step(const lowlevel::Task& task) {
  (void)task;  // the running task: in_host_ asks about it
  TRELLIS_ASSERT(holds_steps());
  if (!in_host_()) return Duration::zero();
  if (!prng_.chance(config_.step_time_ppm, kPpm)) return Duration::zero();
  const auto span =
      static_cast<std::uint64_t>((config_.step_time_max - config_.step_time_min).count());
  const Duration hold =
      config_.step_time_min + Duration(static_cast<Duration::rep>(prng_.below(span + 1)));
  TRELLIS_ASSERT(hold >= config_.step_time_min && hold <= config_.step_time_max);
  ++steps_held_;
  time_held_ += hold;
  return hold;
}

}  // namespace trellis::sim::internal
