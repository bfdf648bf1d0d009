// Tests of the real backend's first part: waiting with a timeout, and being woken from
// another thread (the path RunToken and worker threads will use).
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "trellis/posix/epoll_backend.h"
#include "trellis/posix/system_clock.h"
#include "trellis/trellis.h"

namespace trellis::posix {
namespace {

using namespace std::chrono_literals;

TEST(EpollBackend, ZeroTimeoutWithNothingPendingReturnsFalse) {
  EpollBackend backend;
  EXPECT_EQ(backend.name(), "epoll");
  EXPECT_FALSE(backend.wait_and_dispatch(Duration::zero()));
  EXPECT_FALSE(backend.has_pending_sources());
}

TEST(EpollBackend, TimeoutExpiresWithNothingDelivered) {
  EpollBackend backend;
  SystemClock clock;
  const Time start = clock.now();
  EXPECT_FALSE(backend.wait_and_dispatch(20ms));
  EXPECT_GE(clock.now() - start, 20ms);
}

TEST(EpollBackend, WakeFromAnotherThreadEndsAnUnboundedWait) {
  EpollBackend backend;
  backend.add_external_source();
  EXPECT_TRUE(backend.has_pending_sources());
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    backend.wake_from_any_thread();
  });
  EXPECT_TRUE(backend.wait_and_dispatch(Duration::max()));
  waker.join();
  backend.remove_external_source();
  EXPECT_FALSE(backend.has_pending_sources());
  // The wake-up was consumed: the next poll finds nothing.
  EXPECT_FALSE(backend.wait_and_dispatch(Duration::zero()));
}

TEST(EpollBackend, WakeBeforeTheWaitIsNotLost) {
  EpollBackend backend;
  backend.wake_from_any_thread();
  backend.wake_from_any_thread();
  EXPECT_TRUE(backend.wait_and_dispatch(Duration::zero()));
  EXPECT_FALSE(backend.wait_and_dispatch(Duration::zero()));
}

TEST(EpollBackend, SpuriousWakeDuringARunDoesNotDisturbASleepingTask) {
  // A foreign thread wakes the loop while the only task sleeps on the real clock: the loop
  // wakes, finds nothing to do, and the task still sleeps its full duration.
  EpollBackend backend;
  backend.add_external_source();
  std::thread waker([&] {
    std::this_thread::sleep_for(5ms);
    backend.wake_from_any_thread();
  });
  const auto elapsed = run(
      [] {
        const Time start = current_time();
        sleep(30ms);
        return current_time() - start;
      },
      {.backend = &backend});
  waker.join();
  EXPECT_GE(elapsed, 30ms);
  backend.remove_external_source();
}

TEST(SystemClock, StartsAtALargeRandomOffsetAndNeverGoesBack) {
  // now() = CLOCK_MONOTONIC + a random offset in [10'000 s, 200'000 s): bracket the raw
  // monotonic reading so the check holds whatever the machine's uptime.
  auto monotonic = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  SystemClock clock;
  const Duration before = monotonic();
  const Time first = clock.now();
  const Duration after = monotonic();
  EXPECT_GE(first.time_since_epoch() - before, std::chrono::seconds(10'000));
  EXPECT_LT(first.time_since_epoch() - after, std::chrono::seconds(200'000));
  Time previous = first;
  for (int i = 0; i < 1000; ++i) {
    const Time now = clock.now();
    EXPECT_GE(now, previous);
    previous = now;
  }
  EXPECT_EQ(clock.sleep_time_until(first), Duration::zero());
  // Relative to a target an hour away, so a loaded machine cannot make it flaky.
  const Time target = clock.now() + 1h;
  const Duration until = clock.sleep_time_until(target);
  EXPECT_LE(until, 1h);
  EXPECT_GT(until, 59min);
}

TEST(SystemClock, RealSleepTakesAtLeastItsDuration) {
  const auto elapsed = run([] {
    const Time start = current_time();
    sleep(15ms);
    return current_time() - start;
  });
  EXPECT_GE(elapsed, 15ms);
  EXPECT_LT(elapsed, 5s);
}

}  // namespace
}  // namespace trellis::posix
