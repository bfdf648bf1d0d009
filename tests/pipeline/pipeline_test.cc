// Pipeline core: create from Chain/Merge sources, Map and Filter, taps, draining, errors,
// cancellation and back-pressure (Slurry's tests/test_pipeline.py and test_refiners.py
// semantics). Every TRELLIS_ASYNC_TEST runs under many schedule seeds with a MockClock that
// autojumps, so nothing here depends on real time.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline_test_support.h"
#include "trellis/fakes.h"
#include "trellis/pipeline.h"
#include "trellis/sim/gtest.h"
#include "trellis/trellis.h"

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;
using testing::collect;
using testing::feed;

TRELLIS_ASYNC_TEST(Pipeline, ChainMapFilterKeepsOrderAndEnds) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p =
        create(nursery, Chain(feed<int>(nursery, {1, 2, 3, 4, 5, 6})),
               Map([](int v) { return v * 10; }), Filter([](const int& v) { return v != 30; }));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{10, 20, 40, 50, 60}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, ChainReadsSourcesOneAfterAnother) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2}), feed<int>(nursery, {3}),
                                       feed<int>(nursery, {4, 5})));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{1, 2, 3, 4, 5}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, ChainInTheMiddlePutsUpstreamFirst) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2})),
                        Map([](int v) { return v + 100; }), Chain(feed<int>(nursery, {7, 8})));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{101, 102, 7, 8}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, ChainInputLastReadsUpstreamAfterTheSources) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2})),
                        Chain(feed<int>(nursery, {7}), feed<int>(nursery, {8})).input_last());
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{7, 8, 1, 2}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, MergeKeepsEachSourcesOrder) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p =
        create(nursery, Merge(feed<int>(nursery, {1, 2, 3}), feed<int>(nursery, {10, 20, 30}, 1ms)),
               Merge(feed<int>(nursery, {100})));
    std::vector<int> got = collect(p.tap<int>());
    std::vector<int> small, large;
    for (int v : got) (v < 10 ? small : large).push_back(v);
    EXPECT_EQ(small, (std::vector<int>{1, 2, 3}));
    std::sort(large.begin(), large.end());
    EXPECT_EQ(large, (std::vector<int>{10, 20, 30, 100}));
    // Within one source the order is kept.
    std::vector<int> tens;
    for (int v : got) {
      if (v >= 10 && v < 100) tens.push_back(v);
    }
    EXPECT_EQ(tens, (std::vector<int>{10, 20, 30}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, EveryTapGetsEveryItem) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<std::string>(nursery, {"a", "b", "c"})));
    MemoryReceiveChannel<std::string> first = p.tap<std::string>();
    MemoryReceiveChannel<std::string> second = p.tap<std::string>({.max_buffer_size = 1});
    std::vector<std::string> a, b;
    open_nursery([&](Nursery& readers) {
      readers.start_soon([&] { a = collect(std::move(first)); });
      readers.start_soon([&] { b = collect(std::move(second)); });
    });
    EXPECT_EQ(a, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(b, a);
  });
}

TRELLIS_ASYNC_TEST(Pipeline, WrongTapTypeIsAClearError) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p =
        create(nursery, Chain(feed<int>(nursery, {1})), Map([](int v) { return v * 0.5; }));
    try {
      (void)p.tap<int>();
      ADD_FAILURE() << "tap<int> on a pipeline of double did not throw";
    } catch (const PipelineTypeError& e) {
      EXPECT_EQ(e.requested(), "int");
      EXPECT_EQ(e.actual(), "double");
      EXPECT_NE(std::string(e.what()).find("double"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)p.tap<int>(), std::invalid_argument);
    EXPECT_EQ(p.output_type(), typeid(double));
    EXPECT_EQ(collect(p.tap<double>()), (std::vector<double>{0.5}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, BadTapOptionsAreRefused) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1})));
    EXPECT_THROW((void)p.tap<int>({.timeout = -1s}), std::invalid_argument);
    EXPECT_THROW((void)p.tap<int>({.timeout = 1s, .retrys = -1}), std::invalid_argument);
    EXPECT_THROW((void)p.tap<int>({.retrys = 2}), std::invalid_argument);  // no timeout
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{1}));
    Pipeline moved = std::move(p);
    EXPECT_THROW((void)p.tap<int>(), ClosedResourceError);  // NOLINT(bugprone-use-after-move)
  });
}

TRELLIS_ASYNC_TEST(Pipeline, ATapAfterTheEndIsAlreadyAtItsEnd) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2})));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{1, 2}));
    EXPECT_TRUE(collect(p.tap<int>()).empty());
  });
}

TRELLIS_ASYNC_TEST(Pipeline, AnErrorInASectionFailsTheNursery) {
  bool source_closed = false;
  try {
    open_nursery([&](Nursery& nursery) {
      auto [tx, rx] = open_memory_channel<int>(0);
      nursery.start_soon([&source_closed, tx = std::move(tx)]() mutable {
        try {
          for (int i = 0;; ++i) tx.send(i);
        } catch (const BrokenResourceError&) {
          source_closed = true;
        } catch (const Cancelled&) {
          source_closed = true;
          throw;
        }
      });
      Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) {
                            if (v == 3) throw std::runtime_error("map failed at 3");
                            return v;
                          }));
      MemoryReceiveChannel<int> tap = p.tap<int>();
      std::vector<int> got;
      try {
        for (int v : tap) got.push_back(v);
      } catch (const Cancelled&) {
        EXPECT_LE(got.size(), 3u);
        throw;
      }
      EXPECT_LE(got.size(), 3u);
    });
    ADD_FAILURE() << "the section's error did not surface";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<std::runtime_error>());
  }
  EXPECT_TRUE(source_closed);
}

TRELLIS_ASYNC_TEST(Pipeline, ClosingEveryTapStopsTheSources) {
  bool broken = false;
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    nursery.start_soon([&broken, tx = std::move(tx)]() mutable {
      try {
        for (int i = 0;; ++i) tx.send(i);  // endless: only a closed pipeline stops it
      } catch (const BrokenResourceError&) {
        broken = true;
      }
    });
    Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) { return v + 1; }),
                        Filter([](const int&) { return true; }));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    EXPECT_EQ(tap.receive(), 1);
    EXPECT_EQ(tap.receive(), 2);
    tap.close();
  });
  EXPECT_TRUE(broken);
}

TRELLIS_ASYNC_TEST(Pipeline, APipelineNeverTappedStopsWhenItsHandleGoes) {
  bool broken = false;
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    nursery.start_soon([&broken, tx = std::move(tx)]() mutable {
      try {
        for (int i = 0;; ++i) tx.send(i);
      } catch (const BrokenResourceError&) {
        broken = true;
      }
    });
    (void)create(nursery, Chain(std::move(rx)), Map([](int v) { return v; }));
  });
  EXPECT_TRUE(broken);  // and the nursery ended: no deadlock
}

TRELLIS_ASYNC_TEST(Pipeline, CancellationStopsEverySectionPromptly) {
  const Time start = current_time();
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    nursery.start_soon([tx = std::move(tx)]() mutable {
      for (int i = 0;; ++i) {
        tx.send(i);
        sleep(1s);
      }
    });
    Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) { return v; }));
    MemoryReceiveChannel<int> tap = p.tap<int>();
    nursery.start_soon([&nursery] {
      sleep(10s);
      nursery.cancel_scope().cancel();
    });
    for (int v : tap) (void)v;  // ends with Cancelled from the scope
  });
  EXPECT_EQ(current_time() - start, 10s);
}

TRELLIS_ASYNC_TEST(Pipeline, ASlowTapAppliesBackPressure) {
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    int sent = 0;
    nursery.start_soon([&sent, tx = std::move(tx)]() mutable {
      for (int i = 0; i < 100; ++i) {
        tx.send(i);
        ++sent;
      }
    });
    Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) { return v; }),
                        Filter([](const int&) { return true; }));
    MemoryReceiveChannel<int> tap = p.tap<int>({.max_buffer_size = 2});
    fakes::wait_all_tasks_blocked();
    // Nothing buffers between sections: the tap's 2, one item held by each of the pump and
    // the two sections, and one taken by the Chain from the source.
    EXPECT_LE(sent, 2 + 3 + 1);
    EXPECT_EQ(tap.statistics().current_buffer_used, 2u);
    EXPECT_EQ(collect(std::move(tap)).size(), 100u);
    EXPECT_EQ(sent, 100);
  });
}

TRELLIS_ASYNC_TEST(Pipeline, AStuckTapTimesOutWithRetries) {
  const Time start = current_time();
  try {
    open_nursery([&](Nursery& nursery) {
      Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 3})));
      MemoryReceiveChannel<int> reader = p.tap<int>();
      MemoryReceiveChannel<int> stuck = p.tap<int>({.timeout = 5s, .retrys = 2});
      EXPECT_EQ(reader.receive(), 1);  // the stuck tap never reads
      sleep_forever();
    });
    ADD_FAILURE() << "a stuck tap did not fail the pipeline";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<BusyResourceError>());
  }
  EXPECT_EQ(current_time() - start, 15s);  // 3 attempts of 5s
}

TRELLIS_ASYNC_TEST(Pipeline, ASlowTapWithinItsRetriesLosesNothing) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 3})));
    MemoryReceiveChannel<int> tap = p.tap<int>({.timeout = 5s, .retrys = 3});
    std::vector<int> got;
    for (int v : tap) {
      got.push_back(v);
      sleep(12s);  // the pump times out twice per item, then gets through
    }
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  });
}

TRELLIS_ASYNC_TEST(Pipeline, MoveOnlyItemsFlowThroughOneTap) {
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<std::unique_ptr<int>>(0);
    nursery.start_soon([tx = std::move(tx)]() mutable {
      for (int i = 0; i < 3; ++i) tx.send(std::make_unique<int>(i));
    });
    Pipeline p = create(nursery, Chain(std::move(rx)),
                        Map([](std::unique_ptr<int> v) { return std::make_unique<int>(*v * 2); }));
    MemoryReceiveChannel<std::unique_ptr<int>> tap = p.tap<std::unique_ptr<int>>();
    EXPECT_THROW((void)p.tap<std::unique_ptr<int>>(), std::invalid_argument);  // would copy
    std::vector<int> got;
    for (std::unique_ptr<int>& v : tap) got.push_back(*v);
    EXPECT_EQ(got, (std::vector<int>{0, 2, 4}));
  });
}

}  // namespace
}  // namespace trellis::pipeline

namespace trellis::pipeline {
namespace {

// The same code on the real clock and epoll backend (no MockClock): a few milliseconds of
// real time; nothing asserted about timing, only about what arrives.
TEST(PipelineReal, RunsOnTheRealClockAndBackend) {
  std::vector<std::vector<int>> got;
  run([&] {
    open_nursery([&](Nursery& nursery) {
      Pipeline p = create(
          nursery, Metronome(std::chrono::milliseconds(1), 5), Enumerate(),
          Map([](std::pair<std::size_t, int> e) { return static_cast<int>(e.first) * e.second; }),
          ThreadSection([](int v) { return v + 1; }), Group(2));
      MemoryReceiveChannel<std::vector<int>> tap = p.tap<std::vector<int>>();
      for (int i = 0; i < 3; ++i) got.push_back(tap.receive());
      tap.close();  // stops the metronome
    });
  });
  EXPECT_EQ(got, (std::vector<std::vector<int>>{{1, 6}, {11, 16}, {21, 26}}));
}

}  // namespace
}  // namespace trellis::pipeline
