// trellis/scenarios/actor_tree/actor_tree.h — the actor-tree scenario's production code: a
// supervisor (an actor nursery) streams items to a worker actor through a context; the
// worker answers each with its square and fails now and then (the buggify point
// "actor_tree.worker_fails"; never outside a World). The supervisor replaces a failed worker
// and re-sends the items still in flight. Planted bug (SupervisorConfig::planted_bug): a new
// worker is re-sent one item too many (the last one already answered), so an item can be
// delivered twice — only a failure after an answer exposes it.
//
//   std::map<int, int> delivered;   // item -> times delivered
//   actor::open_actor_nursery([&](actor::ActorNursery& an) {
//     int restarts = supervise(an, {.items = 40}, delivered);
//   });
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "trellis/actor.h"

namespace trellis::scenarios::actor_tree {

struct SupervisorConfig {
  int items = 40;
  std::size_t pipeline = 4;  // items in flight per worker
  bool planted_bug = false;
  std::string worker_host{};  // ActorOptions::host of the workers ("": the supervisor's)
};

// Sends 0..items-1 through a succession of workers until each is answered; delivered[item]
// counts the answers taken. Throws std::logic_error for a wrong square or an item delivered
// twice; returns how many workers were replaced after a failure.
int supervise(actor::ActorNursery& an, const SupervisorConfig& config,
              std::map<int, int>& delivered);

// The worker's function name (a context function: started(0), then a stream of ints answered
// with (item, item * item) pairs until the supervisor closes its side).
inline constexpr const char* kSquareWorker = "actor_tree.square_worker";
// A plain function: n * n ("trellis serve actor-tree" calls it).
inline constexpr const char* kSquare = "actor_tree.square";

}  // namespace trellis::scenarios::actor_tree
