// Each non-timed section: order, completion, errors, closing upstream, and composition (user
// sections, Sequence, extend), following Slurry's tests/test_refiners.py, test_filters.py,
// test_combiners.py, test_threading.py and test_pipeline.py. Every test runs under many
// schedule seeds (TRELLIS_ASYNC_TEST).
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
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

TRELLIS_ASYNC_TEST(PipelineSections, SkipDropsTheFirstItems) {
  open_nursery([&](Nursery& nursery) {
    EXPECT_EQ(collect(create(nursery, Chain(feed<int>(nursery, {1, 2, 3, 4})), Skip(2)).tap<int>()),
              (std::vector<int>{3, 4}));
    EXPECT_TRUE(
        collect(create(nursery, Chain(feed<int>(nursery, {1, 2})), Skip(5)).tap<int>()).empty());
    EXPECT_EQ(collect(create(nursery, Chain(feed<int>(nursery, {1, 2})), Skip(0)).tap<int>()),
              (std::vector<int>{1, 2}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, SkipWhileStopsSkippingAtTheFirstFalse) {
  open_nursery([&](Nursery& nursery) {
    int calls = 0;
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 5, 1, 7})),
                        SkipWhile([&calls](const int& v) {
                          ++calls;
                          return v < 3;
                        }));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{5, 1, 7}));
    EXPECT_EQ(calls, 3);  // not called after the first false
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, EnumerateCountsFromZeroOrStart) {
  using Pair = std::pair<std::size_t, std::string>;
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<std::string>(nursery, {"a", "b"})), Enumerate());
    EXPECT_EQ(collect(p.tap<Pair>()), (std::vector<Pair>{{0, "a"}, {1, "b"}}));
    Pipeline q = create(nursery, Chain(feed<std::string>(nursery, {"c"})), Enumerate(7));
    EXPECT_EQ(collect(q.tap<Pair>()), (std::vector<Pair>{{7, "c"}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ZipPairsItemsAndEndsWithTheShortestSource) {
  using Row = std::tuple<int, std::string>;
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(
        nursery, Zip(feed<int>(nursery, {1, 2, 3}, 1ms), feed<std::string>(nursery, {"a", "b"})));
    EXPECT_EQ(collect(p.tap<Row>()), (std::vector<Row>{{1, "a"}, {2, "b"}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ZipInTheMiddleZipsUpstreamFirst) {
  using Row = std::tuple<int, int>;
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2})),
                        Map([](int v) { return v * 10; }), Zip(feed<int>(nursery, {7, 8, 9})));
    EXPECT_EQ(collect(p.tap<Row>()), (std::vector<Row>{{10, 7}, {20, 8}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ZipLatestSendsTheLatestOfEverySource) {
  using Row = std::tuple<std::optional<int>, std::optional<int>>;
  open_nursery([&](Nursery& nursery) {
    auto [a_tx, a_rx] = open_memory_channel<int>(0);
    auto [b_tx, b_rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, ZipLatest(std::move(a_rx), std::move(b_rx)));
    MemoryReceiveChannel<Row> tap = p.tap<Row>();
    a_tx.send(1);
    EXPECT_EQ(tap.receive(), Row(1, std::nullopt));
    b_tx.send(10);
    EXPECT_EQ(tap.receive(), Row(1, 10));
    a_tx.send(2);
    EXPECT_EQ(tap.receive(), Row(2, 10));
    b_tx.close();  // one source ends: ZipLatest ends and closes the other
    EXPECT_TRUE(collect(std::move(tap)).empty());
    EXPECT_THROW(a_tx.send(3), BrokenResourceError);
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ZipLatestNotPartialWaitsForEverySource) {
  using Row = std::tuple<std::optional<int>, std::optional<int>>;
  open_nursery([&](Nursery& nursery) {
    auto [a_tx, a_rx] = open_memory_channel<int>(0);
    auto [b_tx, b_rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, ZipLatest(std::move(a_rx), std::move(b_rx)).partial(false));
    MemoryReceiveChannel<Row> tap = p.tap<Row>();
    a_tx.send(1);
    a_tx.send(2);
    fakes::wait_all_tasks_blocked();  // the pull stored 2 (a rendezvous send returns before)
    b_tx.send(10);
    EXPECT_EQ(tap.receive(), Row(2, 10));
    a_tx.close();
    EXPECT_TRUE(collect(std::move(tap)).empty());
  });
}

// A user section: any class with refine(input, output).
struct Duplicate {
  void refine(MemoryReceiveChannel<int>& input, MemorySendChannel<std::string>& output) {
    for (int v : input) {
      output.send(std::to_string(v));
      output.send(std::to_string(v));
    }
  }
};

// A user source: refine(output) only.
struct Countdown {
  int from;
  void refine(MemorySendChannel<int>& output) {
    for (int i = from; i > 0; --i) output.send(i);
  }
};

TRELLIS_ASYNC_TEST(PipelineSections, UserSectionsAndSectionLambdas) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(
        nursery, Countdown{3}, Duplicate{},
        Section([](MemoryReceiveChannel<std::string>& in, MemorySendChannel<std::size_t>& out) {
          std::size_t total = 0;
          for (std::string& s : in) total += s.size();
          out.send(total);  // a reducing section: one item at the end
        }));
    EXPECT_EQ(collect(p.tap<std::size_t>()), (std::vector<std::size_t>{6}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ASequenceIsOneSection) {
  open_nursery([&](Nursery& nursery) {
    auto squares_of_odds =
        Sequence(Filter([](const int& v) { return v % 2 == 1; }), Map([](int v) { return v * v; }));
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 3, 4, 5})),
                        std::move(squares_of_odds), std::make_tuple(Skip(1)));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{9, 25}));
    // A sequence that starts with a source can start a pipeline.
    Pipeline q = create(nursery, Sequence(Countdown{2}, Map([](int v) { return v + 1; })));
    EXPECT_EQ(collect(q.tap<int>()), (std::vector<int>{3, 2}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ExtendBuildsOnAPipeline) {
  open_nursery([&](Nursery& nursery) {
    Pipeline base = create(nursery, Chain(feed<int>(nursery, {1, 2, 3})));
    Pipeline strings = base.extend(Map([](int v) { return std::to_string(v); }));
    Pipeline counted = base.extend<int>(Enumerate());  // generic first section: name the type
    // Duplicate takes int, strings gives std::string: a clear error, not a crash.
    EXPECT_THROW((void)strings.extend(Duplicate{}, Skip(0)), PipelineTypeError);
    EXPECT_THROW((void)base.extend<double>(Skip(1)), PipelineTypeError);
    std::vector<std::string> s;
    std::vector<std::pair<std::size_t, int>> c;
    open_nursery([&](Nursery& readers) {
      readers.start_soon(
          [&, tap = strings.tap<std::string>()]() mutable { s = collect(std::move(tap)); });
      readers.start_soon([&, tap = counted.tap<std::pair<std::size_t, int>>()]() mutable {
        c = collect(std::move(tap));
      });
    });
    EXPECT_EQ(s, (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(c, (std::vector<std::pair<std::size_t, int>>{{0, 1}, {1, 2}, {2, 3}}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ThreadSectionRunsOnWorkerThreadsInOrder) {
  open_nursery([&](Nursery& nursery) {
    Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 3, 4})),
                        ThreadSection([](int v) { return std::to_string(v * v); }));
    EXPECT_EQ(collect(p.tap<std::string>()), (std::vector<std::string>{"1", "4", "9", "16"}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, AThreadSectionErrorFailsThePipeline) {
  try {
    open_nursery([&](Nursery& nursery) {
      Pipeline p = create(nursery, Chain(feed<int>(nursery, {1, 2, 3})), ThreadSection([](int v) {
                            if (v == 2) throw std::out_of_range("two");
                            return v;
                          }));
      (void)collect(p.tap<int>());
    });
    ADD_FAILURE() << "no error";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<std::out_of_range>());
  }
}

TRELLIS_ASYNC_TEST(PipelineSections, ASectionThatStopsEarlyClosesUpstream) {
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
    Pipeline p = create(nursery, Chain(std::move(rx)), Map([](int v) { return v; }),
                        Section([](MemoryReceiveChannel<int>& in, MemorySendChannel<int>& out) {
                          out.send(in.receive());  // takes one item, then returns
                        }));
    EXPECT_EQ(collect(p.tap<int>()), (std::vector<int>{0}));
  });
  EXPECT_TRUE(broken);
}

}  // namespace
}  // namespace trellis::pipeline

namespace trellis::pipeline {
namespace {

TRELLIS_ASYNC_TEST(PipelineSections, ZipLatestInTheMiddle) {
  using Row = std::tuple<std::optional<int>, std::optional<std::string>>;
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<std::string>(0);
    auto [up_tx, up_rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, Chain(std::move(up_rx)), ZipLatest(std::move(rx)));
    MemoryReceiveChannel<Row> tap = p.tap<Row>();
    tx.send("x");
    EXPECT_EQ(tap.receive(), Row(std::nullopt, "x"));
    up_tx.send(3);
    EXPECT_EQ(tap.receive(), Row(3, "x"));
    up_tx.close();
    EXPECT_TRUE(testing::collect(std::move(tap)).empty());
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ATapAddedWhileRunningGetsTheItemsFromThenOn) {
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    Pipeline p = create(nursery, Chain(std::move(rx)));
    MemoryReceiveChannel<int> first = p.tap<int>({.max_buffer_size = 10});
    tx.send(1);
    tx.send(2);
    fakes::wait_all_tasks_blocked();  // 1 and 2 are in the first tap's buffer
    MemoryReceiveChannel<int> second = p.tap<int>({.max_buffer_size = 10});
    tx.send(3);
    tx.close();
    EXPECT_EQ(testing::collect(std::move(first)), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(testing::collect(std::move(second)), (std::vector<int>{3}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, ExtendWithAUserSectionAndClosingTheExtension) {
  open_nursery([&](Nursery& nursery) {
    Pipeline base = create(nursery, Chain(testing::feed<int>(nursery, {1, 2, 3})));
    Pipeline doubled = base.extend(Duplicate{});  // names its input type (int) itself
    MemoryReceiveChannel<int> direct = base.tap<int>();
    MemoryReceiveChannel<std::string> ext = doubled.tap<std::string>();
    EXPECT_EQ(ext.receive(), "1");
    ext.close();  // the extension stops; the base keeps serving its own tap
    EXPECT_EQ(testing::collect(std::move(direct)), (std::vector<int>{1, 2, 3}));
  });
}

TRELLIS_ASYNC_TEST(PipelineSections, BadSectionArgumentsAreRefused) {
  EXPECT_THROW(Chain(std::vector<MemoryReceiveChannel<int>>{}), std::invalid_argument);
  EXPECT_THROW(Merge(std::vector<MemoryReceiveChannel<int>>{}), std::invalid_argument);
  struct NotCopyable {
    NotCopyable() = default;
    NotCopyable(NotCopyable&&) = default;
    int operator()(int v) { return v; }
  };
  EXPECT_THROW(ThreadSection(NotCopyable{}, {.abandon_on_cancel = true}), std::invalid_argument);
  // A used (moved-from) source channel is a clear error from the pipeline, not a crash.
  try {
    open_nursery([&](Nursery& nursery) {
      auto [tx, rx] = open_memory_channel<int>(0);
      MemoryReceiveChannel<int> taken = std::move(rx);
      Pipeline p = create(nursery, Chain(std::move(rx)));  // NOLINT(bugprone-use-after-move)
      (void)testing::collect(p.tap<int>());
    });
    ADD_FAILURE() << "no error";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<ClosedResourceError>());
  }
}

}  // namespace
}  // namespace trellis::pipeline
