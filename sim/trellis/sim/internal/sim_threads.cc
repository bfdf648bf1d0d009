#include "trellis/sim/internal/sim_threads.h"

#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"

namespace trellis::sim::internal {

ThreadFacet::JobId SimThreads::start_job(std::function<void()> work, std::function<void()> done) {
  TRELLIS_ASSERT(kLatencyMin <= kLatencyMax);
  const JobId id = next_job_++;
  const auto span = static_cast<std::uint64_t>((kLatencyMax - kLatencyMin).count());
  const Duration latency =
      kLatencyMin + Duration(static_cast<Duration::rep>(prng_.below(span + 1)));
  lowlevel::spawn_system_task(
      [this, id, latency, work = std::move(work), done = std::move(done)] {
        CancelScope starting;
        starting.set_shield(true);
        starting.run([&] { sleep(latency); });
        work();
        const auto erased = jobs_.erase(id);
        TRELLIS_ASSERT(erased == 1);
        done();
      },
      "to_thread (simulated)");
  jobs_.emplace(id, true);
  return id;
}

void SimThreads::abandon_job(JobId job) noexcept {
  auto it = jobs_.find(job);
  if (it != jobs_.end()) it->second = false;
}

ThreadFacetStatistics SimThreads::statistics() const {
  ThreadFacetStatistics stats;
  stats.jobs_running = jobs_.size();
  for (const auto& [id, waited] : jobs_) {
    (void)id;
    if (waited) ++stats.jobs_waited;
  }
  return stats;
}

}  // namespace trellis::sim::internal
