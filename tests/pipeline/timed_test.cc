// Time-based sections (Repeat, Metronome, Delay, RateLimit, Group, Window) under a MockClock
// with autojump (TRELLIS_ASYNC_TEST): hours of virtual time, exact, no real time. Follows
// Slurry's tests/test_producers.py, test_buffers.py and test_filters.py (RateLimit).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "pipeline_test_support.h"
#include "trellis/pipeline.h"
#include "trellis/sim/gtest.h"
#include "trellis/trellis.h"

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;
using testing::collect;

// Items sent at given offsets from the start (then the channel closes at `end`).
struct Timed {
  Duration at;
  int value;
};
MemoryReceiveChannel<int> timed_feed(Nursery& nursery, std::vector<Timed> items,
                                     Duration end = Duration::zero()) {
  auto [tx, rx] = open_memory_channel<int>(0);
  const Time start = current_time();
  nursery.start_soon([items = std::move(items), start, end, tx = std::move(tx)]() mutable {
    try {
      for (const Timed& item : items) {
        sleep_until(start + item.at);
        tx.send(item.value);
      }
      if (end > Duration::zero()) sleep_until(start + end);
    } catch (const BrokenResourceError&) {
    }
  });
  return std::move(rx);
}

// (offset from start, item) for each item of `channel`.
template <class T>
std::vector<std::pair<Duration, T>> stamped(MemoryReceiveChannel<T> channel, Time start) {
  std::vector<std::pair<Duration, T>> out;
  for (T& item : channel) out.emplace_back(current_time() - start, std::move(item));
  return out;
}

TRELLIS_ASYNC_TEST(PipelineTimed, RepeatAsASourceRepeatsItsDefault) {
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Repeat(1h, std::string("tick")));
    MemoryReceiveChannel<std::string> tap = p.tap<std::string>();
    std::vector<Duration> at;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(tap.receive(), "tick");
      at.push_back(current_time() - start);
    }
    EXPECT_EQ(at, (std::vector<Duration>{0h, 1h, 2h, 3h, 4h}));
    tap.close();  // stops the repeater
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, RepeatResendsTheLatestUntilANewOneArrives) {
  using Item = std::pair<Duration, int>;
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(timed_feed(nursery, {{0s, 1}, {25s, 2}}, 42s)), Repeat(10s));
    EXPECT_EQ(stamped(p.tap<int>(), start),
              (std::vector<Item>{{0s, 1}, {10s, 1}, {20s, 1}, {25s, 2}, {35s, 2}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, MetronomeTicksOnMultiplesOfItsInterval) {
  using Item = std::pair<Duration, int>;
  sleep(3s);  // start off the grid
  const Time start = current_time();
  const Duration phase = start.time_since_epoch() % 10s;
  open_nursery([&](Nursery& nursery) {
    // 1 and 2 arrive within one tick: only 2 is sent; the latest is sent at every tick.
    Pipeline p = create(nursery, Chain(timed_feed(nursery, {{1s, 1}, {2s, 2}, {14s, 3}}, 35s)),
                        Metronome(10s));
    const auto got = stamped(p.tap<int>(), start);
    ASSERT_FALSE(got.empty());
    for (const Item& item : got) EXPECT_EQ((item.first + phase) % 10s, 0s) << item.first.count();
    std::vector<int> values;
    for (const Item& item : got) values.push_back(item.second);
    EXPECT_EQ(values.front(), 2);
    EXPECT_EQ(values.back(), 3);
    EXPECT_EQ(got.size(), 3u);  // ticks in (2s, 35s]: three of them, 10s apart
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, MetronomeAsASourceTicksForAnHour) {
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Metronome(1min, 7));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    int count = 0;
    // Ticks fall on whole minutes of the clock: count those in (start, start + 1h + 30s].
    const Duration since_epoch = start.time_since_epoch();
    const auto expected = (since_epoch + 1h + 30s) / 1min - since_epoch / 1min;
    move_on_at(start + 1h + 30s, [&] {
      for (int v : tap) {
        EXPECT_EQ(v, 7);
        ++count;
      }
    });
    EXPECT_EQ(count, expected);
    EXPECT_EQ(expected, 60);
    tap.close();
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, DelayShiftsEveryItemKeepingOrder) {
  using Item = std::pair<Duration, int>;
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p =
        create(nursery, Chain(timed_feed(nursery, {{0s, 1}, {1s, 2}, {5s, 3}})), Delay(30s));
    EXPECT_EQ(stamped(p.tap<int>(), start), (std::vector<Item>{{30s, 1}, {31s, 2}, {35s, 3}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, DelaysBufferIsBounded) {
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    int sent = 0;
    nursery.start_soon([&sent, tx = std::move(tx)]() mutable {
      for (int i = 0; i < 50; ++i) {
        tx.send(i);
        ++sent;
      }
    });
    Pipeline p = create(nursery, Chain(std::move(rx)), Delay(1s, 4));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    sleep(1h);               // the tap is not read: the delay buffer fills, then the source waits
    EXPECT_LE(sent, 4 + 4);  // 4 buffered, one each held by Chain, Delay's pull, Delay, pump
    EXPECT_EQ(collect(std::move(tap)).size(), 50u);
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, RateLimitPassesOnlyAfterTheInterval) {
  using Item = std::pair<Duration, int>;
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(
        nursery,
        Chain(timed_feed(nursery, {{0s, 1}, {5s, 2}, {10s, 3}, {11s, 4}, {30s, 5}, {39s, 6}})),
        RateLimit(10s));
    // 10s after 1 is not "more than" 10s: 3 is dropped; 4 at 11s passes.
    EXPECT_EQ(stamped(p.tap<int>(), start), (std::vector<Item>{{0s, 1}, {11s, 4}, {30s, 5}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, RateLimitPerKey) {
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    // Keys: value % 2 (odd and even limited separately).
    Pipeline p =
        create(nursery, Chain(timed_feed(nursery, {{0s, 1}, {1s, 2}, {2s, 3}, {3s, 4}, {20s, 5}})),
               RateLimit(10s, [](const int& v) { return v % 2; }));
    std::vector<int> values;
    for (auto& [at, v] : stamped(p.tap<int>(), start)) values.push_back(v);
    EXPECT_EQ(values, (std::vector<int>{1, 2, 5}));
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, RateLimitForAnHourOfItems) {
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    nursery.start_soon([tx = std::move(tx)]() mutable {
      for (int i = 0; i < 3600; ++i) {  // one a second for an hour
        tx.send(i);
        sleep(1s);
      }
    });
    Pipeline p = create(nursery, Chain(std::move(rx)), RateLimit(59s));
    EXPECT_EQ(collect(p.tap<int>()).size(), 60u);  // one a minute
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, GroupByCountAndTime) {
  using Item = std::pair<Duration, std::vector<int>>;
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery,
                        Chain(timed_feed(nursery,
                                         {{0s, 1},
                                          {1s, 2},
                                          {2s, 3},
                                          {3s, 4},  // by count
                                          {20s, 5},
                                          {21s, 6},  // by time (timer from 5)
                                          {40s, 7}},
                                         45s)),
                        Group(3, 10s));
    EXPECT_EQ(stamped(p.tap<std::vector<int>>(), start),
              (std::vector<Item>{{2s, {1, 2, 3}}, {13s, {4}}, {30s, {5, 6}}, {45s, {7}}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineTimed, GroupFlushesTheRestAtTheEnd) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(testing::feed<int>(nursery, {1, 2, 3, 4, 5})), Group(2));
    EXPECT_EQ(collect(p.tap<std::vector<int>>()),
              (std::vector<std::vector<int>>{{1, 2}, {3, 4}, {5}}));
  });
  EXPECT_THROW(Group(0, 1s), std::invalid_argument);
  EXPECT_THROW(Group{kUnbounded}, std::invalid_argument);
  EXPECT_THROW(Group(3, 0s), std::invalid_argument);
}

TRELLIS_ASYNC_TEST(PipelineTimed, WindowBySizeAndAge) {
  using W = std::vector<int>;
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(testing::feed<int>(nursery, {1, 2, 3, 4})), Window(3));
    EXPECT_EQ(collect(p.tap<W>()), (std::vector<W>{{1}, {1, 2}, {1, 2, 3}, {2, 3, 4}}));
    Pipeline q = create(nursery, Chain(timed_feed(nursery, {{0s, 1}, {1s, 2}, {5s, 3}, {7s, 4}})),
                        Window(10, 5s, 2));
    // At 5s, item 1 (5s old) stays; at 7s, 1 and 2 are older than 5s.
    EXPECT_EQ(collect(q.tap<W>()), (std::vector<W>{{1, 2}, {1, 2, 3}, {3, 4}}));
  });
  EXPECT_THROW(Window(0), std::invalid_argument);
  EXPECT_THROW(Window(2, 1s, 3), std::invalid_argument);
}

TRELLIS_ASYNC_TEST(PipelineTimed, BadIntervalsAreRefused) {
  EXPECT_THROW(Repeat(0s), std::invalid_argument);
  EXPECT_THROW(Metronome(-1s, 3), std::invalid_argument);
  EXPECT_THROW(Delay(-1s), std::invalid_argument);
  EXPECT_THROW(Delay(1s, 0), std::invalid_argument);
  EXPECT_THROW(RateLimit(-1s), std::invalid_argument);
}

}  // namespace
}  // namespace trellis::pipeline

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;

TRELLIS_ASYNC_TEST(PipelineTimed, RepeatAndMetronomeInTheMiddleStartFromTheirDefault) {
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, Chain(std::move(rx)), Repeat(5s, -1));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    EXPECT_EQ(tap.receive(), -1);  // the default, before any input
    EXPECT_EQ(tap.receive(), -1);
    EXPECT_EQ(current_time() - start, 5s);
    tx.send(4);
    EXPECT_EQ(tap.receive(), 4);
    tx.close();
    EXPECT_TRUE(testing::collect(std::move(tap)).empty());
  });
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, Chain(std::move(rx)), Metronome(5s, -1));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    EXPECT_EQ(tap.receive(), -1);  // the default at the first tick
    EXPECT_EQ(current_time().time_since_epoch() % 5s, 0s);
    tx.send(4);
    EXPECT_EQ(tap.receive(), 4);
    tx.close();
    EXPECT_TRUE(testing::collect(std::move(tap)).empty());
  });
}

// Every time-based section stops promptly when the pipeline's scope is cancelled, whatever it
// is waiting for (a timer, its input, or downstream).
TRELLIS_ASYNC_TEST(PipelineTimed, CancellationStopsTimeBasedSectionsPromptly) {
  const Time start = current_time();
  CancelScope scope;
  scope.set_deadline(start + 1h);
  scope.run([&] {
    open_nursery([&](Nursery& nursery) {
      Pipeline p = create(nursery, Metronome(1s, 1), Repeat(7s), Delay(1min), RateLimit(1s),
                          Group(100, 1h), Window(3));
      MemoryReceiveChannel<std::vector<std::vector<int>>> tap =
          p.tap<std::vector<std::vector<int>>>();
      for (auto& w : tap) (void)w;
    });
  });
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(current_time() - start, 1h);
}

// An error upstream of a time-based section fails the pipeline even while that section waits
// on a timer.
TRELLIS_ASYNC_TEST(PipelineTimed, AnErrorUpstreamOfAWaitingGroupFailsThePipeline) {
  try {
    open_nursery([&](Nursery& nursery) {
      auto [tx, rx] = open_memory_channel<int>(0);
      Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) {
                            if (v < 0) throw std::domain_error("negative");
                            return v;
                          }),
                          Group(10, 1h), Delay(1s));
      MemoryReceiveChannel<std::vector<int>> tap = p.tap<std::vector<int>>();
      tx.send(1);
      tx.send(-1);
      for (auto& g : tap) (void)g;
    });
    ADD_FAILURE() << "no error";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<std::domain_error>());
  }
}

}  // namespace
}  // namespace trellis::pipeline
