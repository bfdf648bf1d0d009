#include "trellis/scenarios/nemesis.h"

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/run.h"

namespace trellis::scenarios {
namespace {

std::uint64_t whole_microseconds(Duration d) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// A duration in [low, high), in whole microseconds: one draw.
Duration draw(Prng& prng, Duration low, Duration high) {
  const std::uint64_t low_us = whole_microseconds(low);
  return std::chrono::microseconds(low_us + prng.below(whole_microseconds(high) - low_us));
}

void check_interval(const char* what, Duration low, Duration high) {
  if (low < Duration::zero() || whole_microseconds(high) <= whole_microseconds(low)) {
    throw std::invalid_argument(std::string("nemesis: empty or negative ") + what + " interval");
  }
}

}  // namespace

void run_nemesis(sim::World& world, const NemesisOptions& options,
                 const std::vector<sim::Host*>& targets, const std::vector<NemesisFault>& faults) {
  if (targets.empty()) throw std::invalid_argument("nemesis: no targets");
  check_interval("wait", options.wait_min, options.wait_max);
  check_interval("duration", options.duration_min, options.duration_max);
  std::vector<const NemesisFault*> menu;  // weighted, in the order of `faults`
  for (const NemesisFault& fault : faults) {
    if (fault.weight < 1) throw std::invalid_argument("nemesis: a fault's weight is below 1");
    if (!world.fault_enabled(fault.kind)) continue;
    menu.insert(menu.end(), static_cast<std::size_t>(fault.weight), &fault);
  }
  if (menu.empty()) return;
  Prng& prng = world.prng();
  for (int round = 0; round < options.rounds; ++round) {
    sleep(draw(prng, options.wait_min, options.wait_max));
    sim::Host& target = *targets[prng.below(targets.size())];
    const Duration duration = draw(prng, options.duration_min, options.duration_max);
    menu[prng.below(menu.size())]->inject(target, duration);
  }
}

sim::FaultPlan draw_fault_plan(std::uint64_t seed, const NemesisOptions& options,
                               const std::vector<std::uint32_t>& targets,
                               const std::vector<PlannedNemesisFault>& faults,
                               std::uint32_t enabled_mask) {
  if (targets.empty()) throw std::invalid_argument("nemesis: no targets");
  check_interval("wait", options.wait_min, options.wait_max);
  check_interval("duration", options.duration_min, options.duration_max);
  std::vector<const PlannedNemesisFault*> menu;  // weighted, in the order of `faults`
  for (const PlannedNemesisFault& fault : faults) {
    if (fault.weight < 1) throw std::invalid_argument("nemesis: a fault's weight is below 1");
    if ((enabled_mask >> static_cast<std::uint32_t>(fault.kind) & 1u) == 0) continue;
    menu.insert(menu.end(), static_cast<std::size_t>(fault.weight), &fault);
  }
  sim::FaultPlan plan;
  if (menu.empty()) return plan;
  // The nemesis's own stream: the seed mixed with a constant ("nemesis" in ASCII).
  std::uint64_t mixed = seed ^ 0x6e656d65736973ULL;
  Prng prng(Prng::split_mix64(mixed));
  Duration at{};
  for (int round = 0; round < options.rounds; ++round) {
    at += draw(prng, options.wait_min, options.wait_max);
    const std::uint32_t target = targets[prng.below(targets.size())];
    const Duration duration = draw(prng, options.duration_min, options.duration_max);
    const Duration lasts =
        menu[prng.below(menu.size())]->plan(prng, target, at, duration, plan.faults);
    TRELLIS_ASSERT(lasts >= Duration::zero());
    at += lasts;
  }
  TRELLIS_ASSERT(plan.end() <= at);
  return plan;
}

std::vector<NemesisFault> hub_and_spoke_faults(sim::World& world, sim::Host& hub,
                                               HubAndSpokeOptions options) {
  check_interval("slow latency", options.slow_latency_min, options.slow_latency_max);
  if (options.slow_duration_factor < 1) {
    throw std::invalid_argument("nemesis: slow_duration_factor is below 1");
  }
  auto crash_hub = [&hub](sim::Host&, Duration duration) {
    hub.crash();
    sleep(duration);
    hub.restart();
  };
  auto crash_spoke = [crashed = options.spoke_crashed](sim::Host& spoke, Duration duration) {
    spoke.crash();
    if (crashed) crashed(spoke);
    sleep(duration);
    spoke.restart();
  };
  auto partition = [&world, &hub, spoke_on_heads = options.partition_spoke_side_on_heads](
                       sim::Host& spoke, Duration duration) {
    const bool one_way = world.prng().chance(1, 2);
    sim::Host& heads = spoke_on_heads ? spoke : hub;
    sim::Host& tails = spoke_on_heads ? hub : spoke;
    if (world.prng().chance(1, 2)) {
      world.partition(heads, tails, one_way);
    } else {
      world.partition(tails, heads, one_way);
    }
    sleep(duration);
    world.heal_all();
  };
  auto slow = [&world, &hub, low = options.slow_latency_min, high = options.slow_latency_max,
               factor = options.slow_duration_factor](sim::Host& spoke, Duration duration) {
    const Duration latency = draw(world.prng(), low, high);
    world.set_link_latency(hub, spoke, latency, 2 * latency);
    world.set_link_latency(spoke, hub, latency, 2 * latency);
    sleep(factor * duration);
    world.reset_link_latency(hub, spoke);
    world.reset_link_latency(spoke, hub);
  };
  auto clog = [&world, &hub](sim::Host& spoke, Duration duration) {
    if (world.prng().chance(1, 2)) {
      world.clog(hub, spoke, duration);
    } else {
      world.clog(spoke, hub, duration);
    }
    sleep(duration);
  };
  return {
      {.kind = sim::FaultKind::kCrash, .inject = crash_hub},
      {.kind = sim::FaultKind::kCrash, .inject = crash_spoke},
      {.kind = sim::FaultKind::kPartition, .weight = options.partition_weight, .inject = partition},
      {.kind = sim::FaultKind::kSlowLink, .inject = slow},
      {.kind = sim::FaultKind::kClog, .inject = clog}};
}

PlannedNemesisFault planned_disk_errors() {
  return {.kind = sim::FaultKind::kDiskError,
          .plan = [](Prng& prng, std::uint32_t target, Duration at, Duration duration,
                     std::vector<sim::PlannedFault>& out) {
            const auto which = static_cast<std::uint32_t>(prng.below(4));
            out.push_back({.kind = sim::PlannedFault::Kind::kDiskErrors,
                           .at = at,
                           .a = target,
                           .b = which,
                           .duration = duration});
            return duration;
          }};
}

PlannedNemesisFault planned_hup_or_term() {
  return {.kind = sim::FaultKind::kCrash,
          .plan = [](Prng& prng, std::uint32_t target, Duration at, Duration,
                     std::vector<sim::PlannedFault>& out) {
            const std::uint32_t signo = prng.chance(1, 2) ? SIGHUP : SIGTERM;
            out.push_back(
                {.kind = sim::PlannedFault::Kind::kSignal, .at = at, .a = target, .b = signo});
            return Duration::zero();
          }};
}

}  // namespace trellis::scenarios
