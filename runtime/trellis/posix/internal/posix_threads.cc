#include "trellis/posix/internal/posix_threads.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "trellis/base/assert.h"

namespace trellis::posix::internal {

// What the workers share with the pool (and keep alive after it).
struct PosixThreads::Shared {
  struct Worker {
    std::thread thread;
    bool busy = false;  // running a job (then the pool's destructor detaches it)
  };
  std::mutex mutex;
  std::condition_variable work_ready;
  // Invariant: stopping goes true once (the pool's destructor); then no job is added and
  // every worker exits once the queue is empty.
  bool stopping = false;
  struct Item {
    std::function<void()> work;
    std::function<void()> finished;  // posted to the loop after work
  };
  std::shared_ptr<ClosureQueue> completions;
  std::deque<Item> queue;  // jobs not yet taken
  std::size_t idle = 0;    // workers waiting on work_ready
  // Every worker not yet joined or detached, by number; one that exited on its own (idle
  // timeout) also has its number in `exited`, for the loop thread to join.
  std::map<std::uint64_t, Worker> workers;
  std::vector<std::uint64_t> exited;
  std::uint64_t next_worker = 0;
};

PosixThreads::PosixThreads(std::shared_ptr<ClosureQueue> completions)
    : completions_(std::move(completions)), shared_(std::make_shared<Shared>()) {
  shared_->completions = completions_;
}

PosixThreads::~PosixThreads() {
  std::vector<std::thread> to_join;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
    // Jobs already accepted but not yet taken (abandoned ones) still run: the workers take
    // them before they exit, so any of them may stay busy for long.
    const bool jobs_left = !shared_->queue.empty();
    for (auto& [number, worker] : shared_->workers) {
      (void)number;
      // A busy worker (an abandoned job) may take forever: it finishes on its own.
      if (worker.busy || jobs_left) {
        worker.thread.detach();
      } else {
        to_join.push_back(std::move(worker.thread));
      }
    }
    shared_->workers.clear();
    shared_->exited.clear();
    shared_->work_ready.notify_all();
  }
  // Idle workers see `stopping` and return at once: a run leaves no idle thread behind.
  for (std::thread& thread : to_join) thread.join();
}

ThreadFacet::JobId PosixThreads::start_job(std::function<void()> work, std::function<void()> done) {
  const JobId id = next_job_++;
  jobs_.emplace(id, true);
  ++waited_;
  auto finished = [this, id, done = std::move(done)] {
    auto it = jobs_.find(id);
    TRELLIS_ASSERT(it != jobs_.end());
    if (it->second) --waited_;
    jobs_.erase(it);
    done();
  };
  std::lock_guard lock(shared_->mutex);
  for (std::uint64_t number : shared_->exited) {
    auto it = shared_->workers.find(number);
    TRELLIS_ASSERT(it != shared_->workers.end());
    it->second.thread.join();  // it has left worker_main already: a short wait at most
    shared_->workers.erase(it);
  }
  shared_->exited.clear();
  shared_->queue.push_back(Shared::Item{std::move(work), std::move(finished)});
  if (shared_->idle >= shared_->queue.size() || shared_->workers.size() >= kThreadsMax) {
    shared_->work_ready.notify_one();
    return id;
  }
  const std::uint64_t number = shared_->next_worker++;
  try {
    // Signals belong to the loop thread: the new thread starts with all of them blocked.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    std::thread thread;
    try {
      thread = std::thread(&PosixThreads::worker_main, shared_, number);
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    shared_->workers[number].thread = std::move(thread);
  } catch (...) {
    shared_->queue.pop_back();
    jobs_.erase(id);
    --waited_;
    throw;
  }
  return id;
}

void PosixThreads::abandon_job(JobId job) noexcept {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || !it->second) return;
  it->second = false;
  --waited_;
}

ThreadFacetStatistics PosixThreads::statistics() const {
  ThreadFacetStatistics stats;
  stats.jobs_running = jobs_.size();
  stats.jobs_waited = waited_;
  std::lock_guard lock(shared_->mutex);
  stats.threads = shared_->workers.size() - shared_->exited.size();
  stats.threads_idle = shared_->idle;
  return stats;
}

void PosixThreads::worker_main(std::shared_ptr<Shared> shared, std::uint64_t self) {
  std::unique_lock lock(shared->mutex);
  while (true) {
    if (!shared->queue.empty()) {
      Shared::Item item = std::move(shared->queue.front());
      shared->queue.pop_front();
      auto it = shared->workers.find(self);
      if (it != shared->workers.end()) it->second.busy = true;
      lock.unlock();
      item.work();
      item.work = nullptr;
      lock.lock();
      it = shared->workers.find(self);
      if (it != shared->workers.end()) it->second.busy = false;
      // Available again before the result is delivered, so a job the result triggers
      // reuses this thread (Trio's thread cache does the same).
      ++shared->idle;
      lock.unlock();
      // A closed queue (the backend is gone) drops `finished` here, on the worker.
      shared->completions->post(std::move(item.finished));
      item.finished = nullptr;
      lock.lock();
      --shared->idle;
      continue;
    }
    if (shared->stopping) return;
    ++shared->idle;
    const bool woken = shared->work_ready.wait_for(
        lock, kIdleTimeout, [&] { return shared->stopping || !shared->queue.empty(); });
    --shared->idle;
    if (!woken) {
      // Idle too long: leave, and let the loop thread join us (unless the pool is gone).
      if (shared->workers.count(self) != 0) shared->exited.push_back(self);
      return;
    }
  }
}

}  // namespace trellis::posix::internal
