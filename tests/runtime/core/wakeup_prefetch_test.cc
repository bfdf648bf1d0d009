// WakeupPrefetch: the next sleeper's stack lines are aimed by a distance learned from real
// wake-ups, and a distance outside the bound falls back to the timer's own lines.
#include "trellis/core/internal/wakeup_prefetch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "trellis/core/internal/runner.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/trellis.h"

namespace trellis::internal {
namespace {

using Prefetch = WakeupPrefetch;

TEST(WakeupPrefetch, BeforeLearningOnlyTheTimersLinesAreAimedAt) {
  Prefetch prefetch;
  alignas(64) char frame[1024] = {};
  const Prefetch::Span span = prefetch.stack_span(&frame[512]);
  EXPECT_EQ(span.low, reinterpret_cast<std::uintptr_t>(&frame[512]));
  EXPECT_EQ(span.high,
            reinterpret_cast<std::uintptr_t>(&frame[512]) + Prefetch::kAboveTimerBytes + 1);
}

TEST(WakeupPrefetch, ALearnedDistanceReachesDownToTheSavedRegisters) {
  Prefetch prefetch;
  alignas(64) char frame[1024] = {};
  prefetch.learn(&frame[600], &frame[400]);
  EXPECT_EQ(prefetch.timer_above_registers(), 200);
  // Another sleeper, laid out the same way, at another place.
  const Prefetch::Span span = prefetch.stack_span(&frame[900]);
  EXPECT_EQ(span.low, reinterpret_cast<std::uintptr_t>(&frame[700]));
}

TEST(WakeupPrefetch, ADistanceOutOfBoundsFallsBackToTheTimersLines) {
  Prefetch prefetch;
  alignas(64) char frame[4096] = {};
  prefetch.learn(&frame[4000], &frame[0]);  // beyond kTimerAboveRegistersMax
  EXPECT_EQ(prefetch.stack_span(&frame[4000]).low, reinterpret_cast<std::uintptr_t>(&frame[4000]));
  prefetch.learn(&frame[0], &frame[100]);  // registers above the timer: not a frame chain
  EXPECT_EQ(prefetch.stack_span(&frame[0]).low, reinterpret_cast<std::uintptr_t>(&frame[0]));
}

// The assumption the prefetch rests on, checked on this build: a sleeper's timer lies a
// small distance above the registers it saved (sleep_until()'s frame, then the frames down
// to the switch), the same distance for every sleeper.
TEST(WakeupPrefetch, SleepersReportOneSmallDistanceInARealRun) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  std::vector<std::ptrdiff_t> distances;
  trellis::run(
      [&] {
        trellis::open_nursery([&](Nursery& nursery) {
          for (int i = 0; i < 8; ++i) {
            nursery.start_soon([&, i] {
              trellis::sleep(std::chrono::milliseconds(1 + i));
              distances.push_back(Runner::current()->wakeup_prefetch().timer_above_registers());
            });
          }
        });
      },
      RunOptions{.clock = &clock});
  ASSERT_EQ(distances.size(), 8u);
  for (const std::ptrdiff_t distance : distances) {
    EXPECT_EQ(distance, distances.front());
#if !defined(__SANITIZE_ADDRESS__)
    // (AddressSanitizer's redzones spread the frames; the fallback then applies.)
    EXPECT_GT(distance, 0);
    EXPECT_LE(distance, Prefetch::kTimerAboveRegistersMax);
#endif
  }
}

}  // namespace
}  // namespace trellis::internal
