// trellis/core/thread_facet.h — the Backend facet for running blocking work off the loop.
//
// to_thread::run_sync (thread/to_thread.h) and the real file system stand on it. A job is
// two closures: `work` runs off the loop (the real backend: on one of its reused worker
// threads; the simulator: in a task of its own after a virtual latency, on the loop thread),
// then `done` runs on the loop thread. Like the other facets it knows nothing of limiters or
// cancellation: those live above it.
//
//   ThreadFacet& threads = *lowlevel::current_backend().threads();
//   const auto job = threads.start_job([&] { blocking(); }, [task] { reschedule(*task); });
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace trellis {

struct ThreadFacetStatistics {
  std::size_t jobs_running = 0;  // started, `done` not yet run
  std::size_t jobs_waited = 0;   // of those, not abandoned (pending sources of the run)
  std::size_t threads = 0;       // worker threads alive (0 in the simulator)
  std::size_t threads_idle = 0;  // of those, waiting for a job
};

class ThreadFacet {
 public:
  using JobId = std::uint64_t;

  virtual ~ThreadFacet() = default;

  // Run-loop thread, from a task. Runs `work` off the loop, then `done` on the loop thread
  // (never inside `start_job`). `work` must not throw (wrap it); `done` runs only while the
  // backend lives. Until `done` ran or the job is abandoned, the job is a pending source (an
  // idle run waits for it). Not a checkpoint; never blocks. Throws std::system_error if no
  // worker can be started.
  virtual JobId start_job(std::function<void()> work, std::function<void()> done) = 0;
  // Run-loop thread. Nobody waits for the job any more: it stops being a pending source;
  // `work` still runs to its end and `done` still runs (if the backend still lives).
  virtual void abandon_job(JobId job) noexcept = 0;
  virtual ThreadFacetStatistics statistics() const = 0;
};

}  // namespace trellis
