// trellis/posix/internal/completion_queue.h — hands work finished on other threads back to
// the run-loop thread: worker threads post() closures, the loop runs them in drain().
//
// The queue is shared (std::shared_ptr) between the backend and every worker thread, so a
// worker that outlives the run (an abandoned getaddrinfo) still touches live memory: after
// close() its post() returns false and drops the closure, and it never wakes the loop again.
//
//   auto queue = std::make_shared<CompletionQueue>([this] { wake_from_any_thread(); });
//   std::thread([queue] { auto r = slow(); queue->post([r] { use(r); }); }).detach();
//   ...
//   queue->drain();   // on the loop thread, after the wake-up
//   queue->close();   // before the wake-up target goes away
//
// Used by EpollBackend for name resolution; RunToken::run_sync_soon and to_thread are meant
// to use the same plumbing.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

namespace trellis::posix::internal {

class CompletionQueue {
 public:
  // `wake` is called (under the queue's lock, from the posting thread) after each post; it
  // must be async-signal-safe-ish and cheap (the backend writes its eventfd). It is never
  // called after close() returned.
  explicit CompletionQueue(std::function<void()> wake) : wake_(std::move(wake)) {}
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Any thread. Queues fn to run on the loop thread and wakes the loop. Returns false (and
  // destroys fn on this thread) if the queue is closed. Never blocks for long; never throws
  // except std::bad_alloc.
  bool post(std::function<void()> fn) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      lock.unlock();
      fn = nullptr;
      return false;
    }
    pending_.push_back(std::move(fn));
    wake_();
    return true;
  }

  // Loop thread. Runs every closure queued before the call, in posting order (closures
  // posted meanwhile wait for the next drain, so a storm cannot starve the loop). Returns how
  // many ran. An exception from a closure propagates; the rest stay queued.
  std::size_t drain() {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(pending_);
    }
    std::size_t ran = 0;
    while (!batch.empty()) {
      std::function<void()> fn = std::move(batch.front());
      batch.pop_front();
      ++ran;
      if (!batch.empty()) {
        try {
          fn();
        } catch (...) {
          requeue_front(batch);
          throw;
        }
      } else {
        fn();
      }
    }
    return ran;
  }

  // Loop thread. From now on post() drops its closure and wake is never called again;
  // closures still queued are destroyed unrun.
  void close() {
    std::deque<std::function<void()>> dropped;
    std::lock_guard lock(mutex_);
    closed_ = true;
    dropped.swap(pending_);
  }

  bool empty() const {
    std::lock_guard lock(mutex_);
    return pending_.empty();
  }

 private:
  void requeue_front(std::deque<std::function<void()>>& rest) {
    std::lock_guard lock(mutex_);
    while (!rest.empty()) {
      pending_.push_front(std::move(rest.back()));
      rest.pop_back();
    }
  }

  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  // Invariant: closed_ never goes back to false; once set, pending_ stays empty.
  bool closed_ = false;
  std::deque<std::function<void()>> pending_;
};

}  // namespace trellis::posix::internal
