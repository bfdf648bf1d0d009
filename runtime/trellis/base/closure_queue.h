// trellis/base/closure_queue.h — ClosureQueue: closures posted from any thread, run in order
// on one thread (the run loop's). The one cross-thread hand-off of the runtime: RunToken's
// run_sync_soon goes through one (internal::RunTokenState), and so does every result that
// EpollBackend's worker threads bring back (name resolution, to_thread jobs).
//
//   auto queue = std::make_shared<trellis::ClosureQueue>(
//       [&backend] { backend.wake_from_any_thread(); });
//   std::thread([queue] { auto r = slow(); queue->post([r] { use(r); }); }).detach();
//   ...
//   queue->drain();  // on the loop thread, after the wake-up
//   queue->close();  // on the loop thread, before the wake-up target goes away
//
// Share it through std::shared_ptr: a thread that outlives the loop (an abandoned
// getaddrinfo) still touches live memory, and after close() its post() returns false and
// never wakes anybody again.
//
// A closure that throws: the exception propagates out of drain() (the run loop turns it into
// a failed run: InternalError naming it), and the closures queued after it go back to the
// front of the queue, in order. So a closure is never lost silently: each one either runs or
// is destroyed by close() (on the loop thread, outside the lock, so that its destructor may
// tell a waiter that the run is over).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

namespace trellis {

class ClosureQueue {
 public:
  // `wake` is called from the posting thread, under the queue's lock, after each post (and
  // after drain() puts closures back); it must be cheap and must not post. It is never called
  // once close() has returned, so it may refer to something that dies after close().
  explicit ClosureQueue(std::function<void()> wake) : wake_(std::move(wake)) {}
  ClosureQueue(const ClosureQueue&) = delete;
  ClosureQueue& operator=(const ClosureQueue&) = delete;

  // Any thread. Queues fn to run on the loop thread and wakes it. Returns false (fn destroyed
  // here, outside the lock) once closed. Never blocks for long; throws only std::bad_alloc.
  bool post(std::function<void()> fn) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      lock.unlock();
      fn = nullptr;
      return false;
    }
    pending_.push_back(std::move(fn));
    queued_.store(true, std::memory_order_release);
    wake_();
    return true;
  }

  // Loop thread. Runs the closures queued before the call, in posting order (closures posted
  // meanwhile wait for the next drain, so a storm cannot starve the loop); returns how many
  // ran. A closure's exception propagates, and the closures after it are queued again, first.
  std::size_t drain() {
    // The loop calls this once per iteration; almost always nothing is queued, and then it
    // costs one inlined load (no call, no lock, and no deque, whose constructor allocates).
    if (!queued_.load(std::memory_order_acquire)) return 0;
    return drain_queued();
  }

  // Loop thread (a closure posted concurrently may or may not be seen; its post() wakes the
  // loop either way). Never blocks.
  bool empty() const noexcept { return !queued_.load(std::memory_order_acquire); }

  // Loop thread. From now on post() fails and wake is never called again; closures still
  // queued are destroyed unrun, outside the lock. Idempotent.
  void close() {
    std::deque<std::function<void()>> dropped;
    std::lock_guard lock(mutex_);
    closed_ = true;
    dropped.swap(pending_);
    queued_.store(false, std::memory_order_relaxed);
  }

  // Any thread.
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
    std::size_t ran = 0;
    while (!batch.empty()) {
      std::function<void()> fn = std::move(batch.front());
      batch.pop_front();
      ++ran;
      try {
        fn();
      } catch (...) {
        requeue_front(batch);
        throw;
      }
    }
    return ran;
  }

  // Puts `rest` back at the front of the queue, in order, and wakes the loop: those closures
  // were due before anything posted since. A queue closed meanwhile (by a closure) takes
  // nothing back: `rest` then dies with drain()'s frame, outside the lock.
  void requeue_front(std::deque<std::function<void()>>& rest) {
    if (rest.empty()) return;
    std::lock_guard lock(mutex_);
    if (closed_) return;
    while (!rest.empty()) {
      pending_.push_front(std::move(rest.back()));
      rest.pop_back();
    }
    queued_.store(true, std::memory_order_relaxed);
    wake_();
  }

  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  // Invariant: closed_ never goes back to false; once set, pending_ stays empty.
  bool closed_ = false;
  std::deque<std::function<void()>> pending_;
  // Invariant (under mutex_): queued_ == !pending_.empty(). Read without the lock by the
  // loop's fast paths.
  std::atomic<bool> queued_{false};
};

}  // namespace trellis
