// Back-pressure and errors through every section: a tap that is not read stops each section
// (the source can only get a few items ahead, whatever the section), and an exception from a
// user function in any section fails the pipeline. Many schedule seeds, MockClock autojump.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trellis/pipeline.h"
#include "trellis/sim/gtest.h"
#include "trellis/trellis.h"

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;

constexpr int kItems = 200;
// Items the source may get ahead of an unread tap: one per rendezvous hop and task (at most
// 4 tasks between the source and the tap here, some with inner tasks) plus Delay's buffer.
constexpr int kAheadMax = 16;

// Builds the pipeline under test from a source channel of kItems ints; T is its output type.
template <class T, class Make>
void expect_back_pressure(const char* what, Make make, std::size_t expected_items) {
  SCOPED_TRACE(what);
  open_nursery([&](Nursery& nursery) {
    auto [tx, rx] = open_memory_channel<int>(0);
    int sent = 0;
    nursery.start_soon([&sent, tx = std::move(tx)]() mutable {
      for (int i = 0; i < kItems; ++i) {
        tx.send(i);
        ++sent;
      }
    });
    Pipeline p = make(nursery, std::move(rx));
    MemoryReceiveChannel<T> tap = p.tap<T>();
    sleep(1h);  // the tap is not read; virtual time runs every timer out
    EXPECT_LE(sent, kAheadMax);
    std::size_t received = 0;
    for (T& item : tap) {
      (void)item;
      ++received;
    }
    EXPECT_EQ(sent, kItems);
    EXPECT_EQ(received, expected_items);
  });
}

TRELLIS_ASYNC_TEST(PipelineBackPressure, EverySectionStopsWhenTheTapIsNotRead) {
  using Ints = std::vector<int>;
  const auto n = static_cast<std::size_t>(kItems);
  expect_back_pressure<int>(
      "Map",
      [](Nursery& nr, auto rx) {
        return create(nr, Chain(std::move(rx)), Map([](int v) { return v; }));
      },
      n);
  expect_back_pressure<int>(
      "Filter",
      [](Nursery& nr, auto rx) {
        return create(nr, Chain(std::move(rx)), Filter([](const int&) { return true; }));
      },
      n);
  expect_back_pressure<int>(
      "Skip", [](Nursery& nr, auto rx) { return create(nr, Chain(std::move(rx)), Skip(3)); },
      n - 3);
  expect_back_pressure<int>(
      "SkipWhile",
      [](Nursery& nr, auto rx) {
        return create(nr, Chain(std::move(rx)), SkipWhile([](const int& v) { return v < 5; }));
      },
      n - 5);
  expect_back_pressure<std::pair<std::size_t, int>>(
      "Enumerate",
      [](Nursery& nr, auto rx) { return create(nr, Chain(std::move(rx)), Enumerate()); }, n);
  expect_back_pressure<int>(
      "Delay", [](Nursery& nr, auto rx) { return create(nr, Chain(std::move(rx)), Delay(1s, 4)); },
      n);
  expect_back_pressure<Ints>(
      "Group", [](Nursery& nr, auto rx) { return create(nr, Chain(std::move(rx)), Group(2, 1s)); },
      n / 2);
  expect_back_pressure<Ints>(
      "Window", [](Nursery& nr, auto rx) { return create(nr, Chain(std::move(rx)), Window(3)); },
      n);
  expect_back_pressure<int>(
      "ThreadSection",
      [](Nursery& nr, auto rx) {
        return create(nr, Chain(std::move(rx)), ThreadSection([](int v) { return v; }));
      },
      n);
  // (RateLimit is left out on purpose: it drops what comes too soon rather than waiting.)
  expect_back_pressure<int>(
      "Merge",
      [](Nursery& nr, auto rx) {
        return create(nr, Merge(std::move(rx)), Merge(open_memory_channel<int>(0).second));
      },
      n);
  expect_back_pressure<std::tuple<int, int>>(
      "Zip",
      [](Nursery& nr, auto rx) {
        auto [tx2, rx2] = open_memory_channel<int>(0);
        nr.start_soon([tx2 = std::move(tx2)]() mutable {
          try {
            for (int i = 0;; ++i) tx2.send(i);  // endless: Zip ends with the first source
          } catch (const BrokenResourceError&) {
            // Zip closed this source when the first one ended.
          }
        });
        return create(nr, Zip(std::move(rx), std::move(rx2)));
      },
      n);
  expect_back_pressure<int>(
      "Section",
      [](Nursery& nr, auto rx) {
        return create(nr, Chain(std::move(rx)),
                      Section([](MemoryReceiveChannel<int>& in, MemorySendChannel<int>& out) {
                        for (int v : in) out.send(v);
                      }));
      },
      n);
}

// Runs a pipeline whose user function throws at item 3 and checks the error surfaces.
template <class T, class Make>
void expect_error(Make make) {
  try {
    open_nursery([&](Nursery& nursery) {
      auto [tx, rx] = open_memory_channel<int>(0);
      nursery.start_soon([tx = std::move(tx)]() mutable {
        for (int i = 0; i < 10; ++i) tx.send(i);
      });
      Pipeline p = make(nursery, std::move(rx));
      for (T& item : p.tap<T>()) (void)item;
    });
    ADD_FAILURE() << "the error did not surface";
  } catch (const ExceptionGroup& group) {
    EXPECT_TRUE(group.contains<std::logic_error>());
  }
}

int throw_at_3(int v) {
  if (v == 3) throw std::logic_error("item 3");
  return v;
}

TRELLIS_ASYNC_TEST(PipelineBackPressure, AnErrorInAnyUserFunctionFailsThePipeline) {
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)),
                  Filter([](const int& v) { return throw_at_3(v) >= 0; }));
  });
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)),
                  SkipWhile([](const int& v) { return throw_at_3(v) < 5; }));
  });
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)),
                  RateLimit(0s, [](const int& v) { return throw_at_3(v); }));
  });
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)), Group(2),
                  Map([](std::vector<int> g) { return throw_at_3(g.back()); }));
  });
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)), Delay(1s), ThreadSection(throw_at_3));
  });
  expect_error<int>([](Nursery& nr, auto rx) {
    return create(nr, Chain(std::move(rx)),
                  Section([](MemoryReceiveChannel<int>& in, MemorySendChannel<int>& out) {
                    for (int v : in) out.send(throw_at_3(v));
                  }));
  });
}

}  // namespace
}  // namespace trellis::pipeline
