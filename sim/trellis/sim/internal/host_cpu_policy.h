// trellis/sim/internal/host_cpu_policy.h — the world's SchedulePolicy: the configured policy
// for every choice, plus virtual CPU time for hosts' tasks (cpu_config.h).
//
// Internal. Every ordering decision goes to the inner policy unchanged (so decision streams
// record, replay and shrink exactly as before); hold_step() draws from its own Prng stream,
// so turning CPU time on or off leaves the inner policy's choices where they were.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "trellis/base/prng.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/sim/cpu_config.h"

namespace trellis::sim::internal {

class HostCpuPolicy final : public SchedulePolicy {
 public:
  // in_host: whether the running task belongs to a live host (only those are held). Throws
  // std::invalid_argument for an inconsistent config.
  HostCpuPolicy(SchedulePolicy& inner, const CpuConfig& config, std::uint64_t seed,
                std::function<bool()> in_host);

  std::size_t choose(std::size_t n, ChoiceKind kind) override { return inner_.choose(n, kind); }
  void order_batch(std::span<lowlevel::Task*> batch) override { inner_.order_batch(batch); }
  std::size_t select_batch(std::span<lowlevel::Task*> runnable) override {
    return inner_.select_batch(runnable);
  }
  bool holds_steps() const noexcept override { return config_.step_time_ppm > 0; }
  Instrument* instrument() noexcept override { return inner_.instrument(); }
  Duration hold_step(const lowlevel::Task& task) override;

  // Steps held so far, and their total virtual CPU time.
  std::uint64_t steps_held() const noexcept { return steps_held_; }
  Duration time_held() const noexcept { return time_held_; }

 private:
  static constexpr std::uint64_t kPpm = 1'000'000;

  SchedulePolicy& inner_;
  const CpuConfig config_;
  Prng prng_;
  std::function<bool()> in_host_;
  std::uint64_t steps_held_ = 0;
  Duration time_held_{};
};

}  // namespace trellis::sim::internal
