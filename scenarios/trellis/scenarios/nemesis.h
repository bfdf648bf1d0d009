// trellis/scenarios/nemesis.h — the fault-injection loop the networked scenarios share.
//
// A nemesis runs a fixed number of rounds, one fault at a time. Each round it waits, picks a
// target host and a fault duration, then one fault from a weighted menu holding only the
// kinds this seed's swarm enables (World::fault_enabled), and injects it: the fault's code
// breaks something, sleeps while it lasts, and mends it. No enabled kind: no rounds at all.
//
//   run_nemesis(world, {.rounds = 6, .wait_min = 0ms, .wait_max = 31ms,
//                       .duration_min = 5ms, .duration_max = 85ms},
//               clients,  // each round targets one of them
//               hub_and_spoke_faults(world, server, {.partition_weight = 2,
//                                                    .slow_latency_min = 5ms,
//                                                    .slow_latency_max = 35ms}));
//
// A planned nemesis (draw_fault_plan) draws the same kind of rounds up front, from the seed
// alone, as data: a sim::FaultPlan the world injects by itself (Config::fault_plan). Its
// faults are then recorded in the run's result and replay file, replayed exactly, and
// shrunk with the schedule. A scenario draws it in its configure():
//
//   s.configure = [](sim::Config& config, const Options&) {
//     config.fault_plan = draw_fault_plan(config.seed, {.rounds = 8, ...}, {0, 1, 2}, menu);
//   };
//
// Randomness is part of what a seed means. Every round draws from world.prng(), in this order:
// the wait, the target, the duration, the fault; then whatever the fault itself draws.
// Changing that order, a menu's order or a weight changes every existing failing seed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/sim/fault_plan.h"

#include "trellis/sim/world.h"

namespace trellis::scenarios {

// One kind of fault a nemesis may inject.
struct NemesisFault {
  sim::FaultKind kind = sim::FaultKind::kCrash;  // offered only when the seed enables it
  int weight = 1;                                // entries in the menu (>= 1)
  // Injects the fault on `target` for about `duration`, waits, and undoes it.
  std::function<void(sim::Host& target, Duration duration)> inject;
};

struct NemesisOptions {
  int rounds = 0;
  // Before each round a wait in [wait_min, wait_max); each fault lasts a duration in
  // [duration_min, duration_max). Whole microseconds.
  Duration wait_min{};
  Duration wait_max{};
  Duration duration_min{};
  Duration duration_max{};
};

// Runs the rounds (see above) on the calling task of world.run(); targets are drawn from
// `targets`, the menu is `faults` in order, each repeated `weight` times. Throws
// std::invalid_argument for no targets, an empty interval or a weight below 1.
void run_nemesis(sim::World& world, const NemesisOptions& options,
                 const std::vector<sim::Host*>& targets, const std::vector<NemesisFault>& faults);

// Faults between one hub (a server) and the spoke the round targets (a client of it).
struct HubAndSpokeOptions {
  int partition_weight = 1;
  // Partitions are one-way half the time; a coin says from which side. On heads the cut is
  // hub -> spoke, or spoke -> hub when this is set (scenarios keep their own so that their
  // seeds keep their meaning).
  bool partition_spoke_side_on_heads = false;
  // A slow link gets a latency in [slow_latency_min, slow_latency_max) both ways and lasts
  // slow_duration_factor fault durations.
  Duration slow_latency_min{};
  Duration slow_latency_max{};
  int slow_duration_factor = 1;
  // Called right after a spoke crashes (e.g. to tell a checker), before it restarts.
  std::function<void(sim::Host& spoke)> spoke_crashed{};
};

// The menu, in this order: crash and restart the hub; crash and restart the spoke (both
// kCrash); partition hub and spoke, both ways or one way (kPartition); slow link between them
// (kSlowLink); clog one direction between them (kClog). The faults refer to world and hub.
// Throws std::invalid_argument for an empty slow latency interval or a factor below 1.
std::vector<NemesisFault> hub_and_spoke_faults(sim::World& world, sim::Host& hub,
                                               HubAndSpokeOptions options);

// One kind of fault a planned nemesis may draw.
struct PlannedNemesisFault {
  sim::FaultKind kind = sim::FaultKind::kCrash;  // offered only when enabled_mask has it
  int weight = 1;                                // entries in the menu (>= 1)
  // Appends the round's faults (host numbers as in fault_plan.h) for `target`, starting at
  // `at`, for about `duration`, drawing what else it needs from prng; returns how long the
  // round lasts (the next round's wait starts then).
  std::function<Duration(Prng& prng, std::uint32_t target, Duration at, Duration duration,
                         std::vector<sim::PlannedFault>& out)>
      plan;
};

// The whole fault plan of a seed, drawn up front: options.rounds rounds, one after another,
// each a wait, a target, a duration and a fault, in that order, then whatever the fault's
// plan draws, from a stream of its own (Prng(seed) split for the nemesis: the run's
// world.prng() draws the same whether the faults come from here or from a replay file).
// Kinds outside enabled_mask (bits over sim::FaultKind) are left out of the menu.
// Throws std::invalid_argument as run_nemesis does.
sim::FaultPlan draw_fault_plan(std::uint64_t seed, const NemesisOptions& options,
                               const std::vector<std::uint32_t>& targets,
                               const std::vector<PlannedNemesisFault>& faults,
                               std::uint32_t enabled_mask = ~0u);

// Menu entries for draw_fault_plan that the disk- and signal-minded scenarios share:
// - a window of the round's duration in which the target's disk fails one class of
//   operation (or all: fault_plan.h, kDiskErrors), the class drawn from prng (below(4));
// - a SIGHUP or SIGTERM (a coin from prng) to the target, taking no time. FaultKind has no
//   signal entry (a terminating signal is a crash): it is offered as kCrash.
// Their draws are part of what the seeds of those scenarios mean: keep them as they are.
PlannedNemesisFault planned_disk_errors();
PlannedNemesisFault planned_hup_or_term();

}  // namespace trellis::scenarios
