// RapidCheck properties: a pipeline computes what the same steps compute on a vector, for
// arbitrary inputs, arbitrary timing of the sources and arbitrary schedules (a seeded
// TrioPolicy under a MockClock with autojump). Chain keeps order exactly; Merge keeps each
// source's order and the multiset of items.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/pipeline.h"
#include "trellis/trellis.h"

namespace trellis::pipeline {
namespace {

using namespace std::chrono_literals;

// One source: its items and the virtual-time gap after each.
struct Source {
  std::vector<int> items;
  std::vector<int> gaps_ms;
};

rc::Gen<Source> gen_source(int tag) {
  return rc::gen::map(rc::gen::container<std::vector<std::pair<int, int>>>(
                          rc::gen::pair(rc::gen::inRange(0, 1000), rc::gen::inRange(0, 3))),
                      [tag](const std::vector<std::pair<int, int>>& raw) {
                        Source s;
                        for (const auto& [value, gap] : raw) {
                          s.items.push_back(tag * 10000 + value);  // the tag tells the source apart
                          s.gaps_ms.push_back(gap);
                        }
                        return s;
                      });
}

std::vector<Source> gen_sources() {
  const int count = *rc::gen::inRange(1, 4);
  std::vector<Source> sources;
  for (int i = 0; i < count; ++i) sources.push_back(*gen_source(i + 1));
  return sources;
}

MemoryReceiveChannel<int> start_source(Nursery& nursery, const Source& source) {
  auto [tx, rx] = open_memory_channel<int>(0);
  nursery.start_soon([&source, tx = std::move(tx)]() mutable {
    for (std::size_t i = 0; i < source.items.size(); ++i) {
      tx.send(source.items[i]);
      if (source.gaps_ms[i] > 0) sleep(std::chrono::milliseconds(source.gaps_ms[i]));
    }
  });
  return std::move(rx);
}

// Runs body in a fresh run under schedule `seed`; RC_FAILs on any error or deadlock.
template <class F>
void run_seeded(std::uint64_t seed, F&& body) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  TrioPolicy policy(seed);
  std::exception_ptr error;
  try {
    run(body, {.clock = &clock, .policy = &policy});
  } catch (...) {
    error = std::current_exception();
  }
  RC_ASSERT(error == nullptr);
}

int mapped(int v) {
  return v * 3 + 1;
}
bool kept(const int& v) {
  return v % 4 != 0;
}

RC_GTEST_PROP(PipelineProperty, ChainMapFilterEqualsTheVectorComputation, ()) {
  const std::vector<Source> sources = gen_sources();
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  std::vector<int> expected;
  for (const Source& s : sources) {
    for (int v : s.items) {
      if (kept(mapped(v))) expected.push_back(mapped(v));
    }
  }
  std::vector<int> got;
  run_seeded(seed, [&] {
    open_nursery([&](Nursery& nursery) {
      std::vector<MemoryReceiveChannel<int>> channels;
      for (const Source& s : sources) channels.push_back(start_source(nursery, s));
      Pipeline p = create(nursery, Chain(std::move(channels)), Map(mapped), Filter(kept));
      for (int v : p.tap<int>()) got.push_back(v);
    });
  });
  RC_ASSERT(got == expected);
}

RC_GTEST_PROP(PipelineProperty, MergeMapFilterEqualsTheVectorComputationAsAMultiset, ()) {
  const std::vector<Source> sources = gen_sources();
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  std::vector<int> got;
  run_seeded(seed, [&] {
    open_nursery([&](Nursery& nursery) {
      std::vector<MemoryReceiveChannel<int>> channels;
      for (const Source& s : sources) channels.push_back(start_source(nursery, s));
      auto first = std::move(channels.front());
      channels.erase(channels.begin());
      // Merge as a source of one channel, then Merge in the middle for the others.
      Pipeline p = create(nursery, Merge(std::move(first)));
      for (auto& channel : channels) p = p.extend<int>(Merge(std::move(channel)));
      for (int v : p.extend(Map(mapped), Filter(kept)).tap<int>()) got.push_back(v);
    });
  });
  // Each source's items arrive in that source's order...
  for (std::size_t i = 0; i < sources.size(); ++i) {
    std::vector<int> expected_of_source, got_of_source;
    for (int v : sources[i].items) {
      if (kept(mapped(v))) expected_of_source.push_back(mapped(v));
    }
    for (int v : got) {
      if ((v - 1) / 3 / 10000 == static_cast<int>(i) + 1) got_of_source.push_back(v);
    }
    RC_ASSERT(got_of_source == expected_of_source);
  }
  // ...and nothing else arrives.
  std::size_t expected_count = 0;
  for (const Source& s : sources) {
    expected_count += static_cast<std::size_t>(
        std::count_if(s.items.begin(), s.items.end(), [](int v) { return kept(mapped(v)); }));
  }
  RC_ASSERT(got.size() == expected_count);
}

RC_GTEST_PROP(PipelineProperty, SkipEnumerateGroupWindowEqualTheVectorComputation, ()) {
  const Source source = *gen_source(1);
  const auto skip = *rc::gen::inRange<std::size_t>(0, 5);
  const auto group = *rc::gen::inRange<std::size_t>(1, 6);
  const auto window = *rc::gen::inRange<std::size_t>(1, 6);
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  using Indexed = std::pair<std::size_t, int>;
  // Reference: skip, enumerate, chunk by `group` (count only), then windows of `window` chunks.
  std::vector<Indexed> indexed;
  for (std::size_t i = skip; i < source.items.size(); ++i) {
    indexed.emplace_back(i - skip, source.items[i]);
  }
  std::vector<std::vector<Indexed>> chunks;
  for (std::size_t i = 0; i < indexed.size(); i += group) {
    chunks.emplace_back(
        indexed.begin() + static_cast<std::ptrdiff_t>(i),
        indexed.begin() + static_cast<std::ptrdiff_t>(std::min(i + group, indexed.size())));
  }
  std::vector<std::vector<std::vector<Indexed>>> expected;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const std::size_t from = i + 1 >= window ? i + 1 - window : 0;
    expected.emplace_back(chunks.begin() + static_cast<std::ptrdiff_t>(from),
                          chunks.begin() + static_cast<std::ptrdiff_t>(i + 1));
  }
  std::vector<std::vector<std::vector<Indexed>>> got;
  run_seeded(seed, [&] {
    open_nursery([&](Nursery& nursery) {
      Pipeline p = create(nursery, Chain(start_source(nursery, source)), Skip(skip), Enumerate(),
                          Group(group), Window(window));
      for (auto& w : p.tap<std::vector<std::vector<Indexed>>>()) got.push_back(std::move(w));
    });
  });
  RC_ASSERT(got == expected);
}

}  // namespace
}  // namespace trellis::pipeline
