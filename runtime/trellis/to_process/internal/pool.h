// trellis/to_process/internal/pool.h — a WorkerContext's workers (see worker_context.h).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/run_token.h"
#include "trellis/process/process.h"
#include "trellis/sync/capacity_limiter.h"
#include "trellis/to_process/frame.h"
#include "trellis/to_process/worker_context.h"

namespace trellis::to_process::internal {

// One worker process and the parent's end of its protocol.
struct WorkerProcess {
  // Bound on one read from the worker's pipe (on the heap: tasks have small stacks).
  static constexpr std::size_t kReadChunk = 65536;
  explicit WorkerProcess(Process p)
      : process(std::move(p)), read_buffer(kReadChunk), pid(process.pid()) {}
  Process process;
  FrameReader reader;
  std::vector<std::byte> read_buffer;
  Time idle_since{};
  int pid = 0;
  bool busy = false;  // taken by a call (counted in Pool::busy_)
  // Calls it answered; 0 for a worker fresh from start_worker().
  std::size_t calls_answered = 0;
};

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  explicit Pool(const WorkerContextOptions& options);
  ~Pool();

  // Called first by every use in a run: drops the workers of an earlier run (killed and
  // reaped when it ended) and sizes slots() for this one.
  void forget_other_runs();
  // Bounds the workers in use to max_workers (a call holds a slot while it has a worker).
  CapacityLimiter& slots() noexcept { return slots_; }
  // The most recently used idle worker, else a new one that has answered kReady. An idle
  // worker is not asked whether it is still alive (a system call on every call): one that
  // died while idle is found by the caller, whose call then breaks its pipe before the
  // worker could have started it (see run_call in pool.cc). A checkpoint when it starts one. Throws
  // OSError (spawn failed), WorkerError (init failed), BrokenWorkerError (the new worker died or
  // broke the protocol).
  std::unique_ptr<WorkerProcess> take();
  // The call is over and the worker healthy: idle again (its idle timer starts now).
  void give_back(std::unique_ptr<WorkerProcess> worker);
  // The worker is done for (broken, cancelled, retiring): kill it if `kill`, then wait for it
  // and reap it, shielded. Returns its return code.
  int discard(std::unique_ptr<WorkerProcess> worker, bool kill);
  // Graceful: close each idle worker's pipe and reap it (see WorkerContext::stop).
  void stop_idle();
  // Kills and reaps what is left; no more idle reaping. For the context's destructor.
  void close() noexcept;
  WorkerContextStatistics statistics() const;

  // Reads one frame from the worker: nullopt at end of file. Throws FrameError, Cancelled.
  static std::optional<Frame> read_frame(WorkerProcess& worker);

 private:
  std::unique_ptr<WorkerProcess> start_worker();
  void ensure_reaper();
  void reap_idle();
  void reap_idle_until_none();

  WorkerContextOptions options_;
  CapacityLimiter slots_;
  RunToken run_;  // the run whose workers idle_ holds
  // Invariant: every worker here was alive when given back, its protocol at a frame
  // boundary, no call in flight; back() is the most recently used, front() the oldest.
  std::deque<std::unique_ptr<WorkerProcess>> idle_;
  std::size_t busy_ = 0;
  std::size_t started_ = 0;
  std::size_t stopped_ = 0;
  bool reaper_running_ = false;
  bool closed_ = false;
  CancelScope* reaper_sleep_ = nullptr;  // the reaper's sleep, cancelled to re-plan or close
};

}  // namespace trellis::to_process::internal
