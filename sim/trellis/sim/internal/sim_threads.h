// trellis/sim/internal/sim_threads.h — the simulator's ThreadFacet: a "thread" is a task.
//
// Real threads never run in a simulation. start_job spawns a system task (inheriting the
// caller's host) that sleeps a virtual latency drawn from the world's seeded stream
// (shielded: the start of a thread cannot be cancelled), then runs `work` on the loop thread,
// then `done`. So to_thread is deterministic, and from_thread calls made by `work` run
// directly in that task. Fault model: none yet beyond the latency (a thread neither fails
// to start nor dies on a host crash).
#pragma once

#include <cstddef>
#include <functional>
#include <map>

#include "trellis/base/prng.h"
#include "trellis/core/thread_facet.h"
#include "trellis/core/time.h"

namespace trellis::sim::internal {

class SimThreads final : public ThreadFacet {
 public:
  static constexpr Duration kLatencyMin = std::chrono::microseconds(5);
  static constexpr Duration kLatencyMax = std::chrono::microseconds(500);

  explicit SimThreads(Prng& prng) : prng_(prng) {}

  JobId start_job(std::function<void()> work, std::function<void()> done) override;
  void abandon_job(JobId job) noexcept override;
  ThreadFacetStatistics statistics() const override;

 private:
  Prng& prng_;
  JobId next_job_ = 1;
  // Job -> still waited for; an entry goes when the job's done ran. Ordered: deterministic.
  std::map<JobId, bool> jobs_;
};

}  // namespace trellis::sim::internal
