// trellis/scenarios/actor_tree/actor_tree.cc — see actor_tree.h.

#include "trellis/scenarios/actor_tree/actor_tree.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

#include "trellis/sim/buggify.h"
#include "trellis/trellis.h"

namespace trellis::scenarios::actor_tree {
namespace {

using namespace std::chrono_literals;

void square_worker(actor::Context& ctx) {
  ctx.started(0);
  actor::MsgStream stream = ctx.open_stream();
  for (int item : stream.messages<int>()) {  // until the supervisor closes its side
    sleep(1ms);
    if (sim::buggify("actor_tree.worker_fails", 0.05)) {
      throw std::runtime_error("injected worker failure");
    }
    stream.send(std::pair<int, int>(item, item * item));
  }
}

long long square(long long n) {
  return n * n;
}

}  // namespace
}  // namespace trellis::scenarios::actor_tree

TRELLIS_ACTOR_FUNCTION("actor_tree.square_worker", trellis::scenarios::actor_tree::square_worker);
TRELLIS_ACTOR_FUNCTION("actor_tree.square", trellis::scenarios::actor_tree::square);

namespace trellis::scenarios::actor_tree {

int supervise(actor::ActorNursery& an, const SupervisorConfig& config,
              std::map<int, int>& delivered) {
  // A bound on replacements: with a 5% failure rate per item, far more than any run needs.
  const int restarts_max = 10 * config.items + 10;
  int restarts = 0;
  int next = 0;
  int generation = 0;
  std::deque<int> in_flight;         // sent to the current worker, not answered
  std::optional<int> last_answered;  // the last item answered
  while (next < config.items || !in_flight.empty()) {
    if (restarts > restarts_max) throw std::logic_error("too many worker failures");
    actor::Portal& worker =
        an.start_actor("worker" + std::to_string(generation++), {.host = config.worker_host});
    actor::ContextHandle ctx = worker.open_context(kSquareWorker);
    (void)ctx->first<int>();
    actor::MsgStream stream = ctx->open_stream();
    // A new worker first gets what its predecessor left unanswered.
    if (config.planted_bug && last_answered && !in_flight.empty()) {
      in_flight.push_front(*last_answered);
    }
    try {
      for (int item : in_flight) stream.send(item);  // (the new worker may fail already)
      while (next < config.items || !in_flight.empty()) {
        while (in_flight.size() < config.pipeline && next < config.items) {
          stream.send(next);
          in_flight.push_back(next++);
        }
        const auto [item, square] = stream.receive<std::pair<int, int>>();
        if (square != item * item) throw std::logic_error("wrong square");
        if (++delivered[item] > 1) {
          throw std::logic_error("item " + std::to_string(item) + " delivered twice");
        }
        in_flight.erase(std::find(in_flight.begin(), in_flight.end(), item));
        last_answered = item;
      }
      stream.close();
      (void)ctx.result<void>();
    } catch (const actor::RemoteActorError& e) {
      if (e.message() != "injected worker failure") throw;
      worker.cancel_actor();  // replaced on the next round
      ++restarts;
    }
  }
  return restarts;
}

}  // namespace trellis::scenarios::actor_tree
