// trellis/fakes/callback_host.h — CallbackHost: the smallest event loop that can host a guest
// run (trellis/guest.h): a queue of callbacks that any thread may add to, drained in order
// on the thread that calls run().
//
//   fakes::CallbackHost host;
//   std::exception_ptr outcome;
//   trellis::start_guest_run(main, host.guest_options([&](std::exception_ptr e) {
//     outcome = e;
//     host.stop();
//   }));
//   host.run();   // until stop()
//
// Any thread may post(); run() and drop_pending() belong to the host's thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <utility>

#include "trellis/guest.h"

namespace trellis::fakes {

class CallbackHost {
 public:
  // Any thread.
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(fn));
    }
    ready_.notify_one();
  }
  // Runs callbacks in order as they come until stop() (from a callback or another thread);
  // callbacks still queued then stay queued. An exception from a callback propagates out of
  // run(), as from a real host loop.
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
        if (stopped_) {
          stopped_ = false;
          return;
        }
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      ++callbacks_run_;
      fn();
    }
  }
  // run() returns before its next callback.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    ready_.notify_one();
  }
  // Destroys every queued callback without running it (a host that gives up).
  void drop_pending() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mutex_);
      dropped.swap(queue_);
    }
  }
  std::size_t callbacks_run() const noexcept { return callbacks_run_; }

  // Options that make this host the guest run's host.
  GuestRunOptions guest_options(std::function<void(std::exception_ptr)> done) {
    auto post_here = [this](std::function<void()> fn) { post(std::move(fn)); };
    return GuestRunOptions{.run_sync_soon_threadsafe = post_here,
                           .run_sync_soon_not_threadsafe = post_here,
                           .done_callback = std::move(done)};
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopped_ = false;
  std::size_t callbacks_run_ = 0;  // host thread only
};

}  // namespace trellis::fakes
