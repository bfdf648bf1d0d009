// trellis/core/internal/run_token_state.h — what a RunToken points to: the run's queue of
// closures from other threads. Internal.
//
// The Runner creates one per run, drains it on the loop thread after every wait and closes
// it when the run ends; tokens (and worker threads) share it, so it outlives the run.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

#include "trellis/core/backend.h"

namespace trellis::internal {

class RunTokenState {
 public:
  explicit RunTokenState(Backend& backend) : backend_(&backend) {}
  RunTokenState(const RunTokenState&) = delete;
  RunTokenState& operator=(const RunTokenState&) = delete;

  // Any thread. Queues fn and wakes the loop; false (fn destroyed here) once closed.
  bool post(std::function<void()> fn) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      lock.unlock();
      fn = nullptr;
      return false;
    }
    pending_.push_back(std::move(fn));
    queued_.store(true, std::memory_order_release);
    // Under the lock: close() cannot have let the backend go yet.
    backend_->wake_from_any_thread();
    return true;
  }

  // Loop thread. Runs the closures queued before the call, in order; returns how many ran.
  // An exception escapes (the run fails); the rest of that batch is destroyed unrun.
  std::size_t drain() {
    // The loop calls this once per iteration; almost always nothing is queued, and then it
    // costs one inlined load (no call, no lock, and no deque, whose constructor allocates).
    if (!queued_.load(std::memory_order_acquire)) return 0;
    return drain_queued();
  }

  // Loop thread (a closure posted concurrently may or may not be seen; its post() wakes
  // the backend either way).
  bool empty() const noexcept { return !queued_.load(std::memory_order_acquire); }

  // Loop thread, when the run ends. From now on post() fails; queued closures are destroyed
  // unrun (outside the lock: their destructors may report RunFinishedError to a waiter).
  void close() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      backend_ = nullptr;
      dropped.swap(pending_);
      queued_.store(false, std::memory_order_relaxed);
    }
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  // drain()'s slow path, kept out of line so that its fast path inlines.
  [[gnu::noinline]] std::size_t drain_queued() {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(pending_);
      queued_.store(false, std::memory_order_relaxed);
    }
    const std::size_t ran = batch.size();
    for (auto& fn : batch) {
      std::function<void()> call = std::move(fn);
      call();
    }
    return ran;
  }

  mutable std::mutex mutex_;
  // Invariant: closed_ never goes back to false; once set, pending_ stays empty and
  // backend_ is null.
  bool closed_ = false;
  Backend* backend_;
  std::deque<std::function<void()>> pending_;
  // Invariant (under mutex_): queued_ == !pending_.empty(). Read without the lock by the
  // loop's fast paths.
  std::atomic<bool> queued_{false};
};

}  // namespace trellis::internal
