// trellis/sim/liveness.h — liveness checks: "once the faults have healed, the system must make
// progress within T virtual seconds" (TigerBeetle's liveness mode). Safety checks catch wrong
// answers; this catches a system that stops answering — a lost wake-up, a leader that never
// steps down, a retry loop that gave up.
//
//   world.run([&] {
//     nemesis(world);                 // crashes, partitions...
//     world.heal_all();               // ...then a quiet network
//     trellis::sim::require_progress(std::chrono::seconds(2), "every client finishes",
//                                    [&] { return clients_done == kClients; });
//   });
//
// require_progress polls `done` on every tick of virtual time until it holds, and throws
// LivenessViolation naming `what`, the bound, and every task with what it is blocked on if it
// does not hold within `within`. Call it from the world's driver (or any task); it blocks
// (a checkpoint) and only virtual time passes.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "trellis/core/time.h"

namespace trellis::sim {

class LivenessViolation : public std::runtime_error {
 public:
  explicit LivenessViolation(const std::string& what) : std::runtime_error(what) {}
};

// Polls every `tick` of virtual time. Throws std::invalid_argument for within < 0 or
// tick <= 0, LivenessViolation when `done` is still false after `within`.
void require_progress(Duration within, const std::string& what, const std::function<bool()>& done,
                      Duration tick = std::chrono::milliseconds(1));

}  // namespace trellis::sim
