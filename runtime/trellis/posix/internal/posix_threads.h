// trellis/posix/internal/posix_threads.h — EpollBackend's ThreadFacet: a pool of reused
// worker threads.
//
// A job goes to an idle worker if there is one, else to a new thread while fewer than
// kThreadsMax exist, else waits in FIFO order for a worker to come free. A worker that has
// been idle for kIdleTimeout exits. `done` closures go back through the backend's
// ClosureQueue. The pool's shared state outlives the backend, so a worker still running an
// abandoned job when the backend goes away finishes safely: its `done` is dropped by the
// closed queue. Every accepted job runs, even abandoned ones still queued when the backend
// goes. The destructor stops the idle workers and joins them (so a run leaves no thread
// behind unless a job of it is still queued or running), and detaches the others.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "trellis/base/closure_queue.h"
#include "trellis/core/thread_facet.h"

namespace trellis::posix::internal {

class PosixThreads final : public ThreadFacet {
 public:
  static constexpr std::size_t kThreadsMax = 256;
  static constexpr std::chrono::seconds kIdleTimeout{10};  // Trio's thread cache: 10 s

  explicit PosixThreads(std::shared_ptr<ClosureQueue> completions);
  // The completion queue must already be closed.
  ~PosixThreads() override;
  PosixThreads(const PosixThreads&) = delete;
  PosixThreads& operator=(const PosixThreads&) = delete;

  JobId start_job(std::function<void()> work, std::function<void()> done) override;
  void abandon_job(JobId job) noexcept override;
  ThreadFacetStatistics statistics() const override;

  // Jobs someone still waits for (the backend's pending sources).
  std::size_t jobs_waited() const noexcept { return waited_; }

 private:
  struct Shared;
  static void worker_main(std::shared_ptr<Shared> shared, std::uint64_t self);

  std::shared_ptr<ClosureQueue> completions_;
  std::shared_ptr<Shared> shared_;
  JobId next_job_ = 1;
  // Loop thread only. Job -> still waited for. Invariant: waited_ == the number of true
  // entries; an entry goes when the job's done ran.
  std::map<JobId, bool> jobs_;
  std::size_t waited_ = 0;
};

}  // namespace trellis::posix::internal
