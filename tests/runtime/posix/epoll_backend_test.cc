// Tests of the real backend's first part: waiting with a timeout, and being woken from
// another thread (the path RunToken and worker threads will use).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

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

// Batches in wake-up order, so that which batch a task runs in is visible in a log.
class WakeOrderPolicy final : public SchedulePolicy {
 public:
  std::size_t choose(std::size_t, ChoiceKind) override { return 0; }
};

TEST(EpollBackend, ThePollRightAfterAWaitThatBroughtEventsIsSkippedOnce) {
  // The loop blocks until a thread makes pipe a readable; the task it wakes makes pipe b
  // readable and passes two checkpoints. The poll after that batch is skipped (the wait just
  // emptied the ready list): b's reader wakes at the poll after the next batch, once the
  // writer has passed its first checkpoint; the poll after it is made.
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
  EpollBackend backend;
  WakeOrderPolicy policy;
  std::vector<std::string> log;
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    ASSERT_EQ(::write(a[1], "x", 1), 1);
  });
  run(
      [&] {
        open_nursery([&](Nursery& nursery) {
          nursery.start_soon([&] {
            lowlevel::current_io().wait_readable(IoHandle{b[0]});
            log.push_back("b readable");
          });
          nursery.start_soon([&] {
            lowlevel::current_io().wait_readable(IoHandle{a[0]});
            ASSERT_EQ(::write(b[1], "y", 1), 1);
            for (int i = 1; i <= 3; ++i) {
              checkpoint();
              log.push_back("checkpoint " + std::to_string(i));
            }
          });
        });
      },
      {.backend = &backend, .policy = &policy});
  writer.join();
  EXPECT_EQ(log, (std::vector<std::string>{"checkpoint 1", "checkpoint 2", "b readable",
                                           "checkpoint 3"}));
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
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
