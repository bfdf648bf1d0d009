// DeadlineHeap against a model: under any sequence of push, remove, update and pop, pops come
// out in (deadline, registration order), removed timers never come out, and contains()
// tells the truth.
#include "trellis/core/internal/deadline_heap.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace trellis::internal {
namespace {

void no_expire(void*) {}

Time at(std::int64_t ns) {
  return Time(Duration(ns));
}

TEST(DeadlineHeap, PopsInDeadlineThenRegistrationOrder) {
  DeadlineHeap heap;
  std::vector<DeadlineTimer> timers(5);
  for (auto& t : timers) t.expire = no_expire;
  heap.push(timers[0], at(30));
  heap.push(timers[1], at(10));
  heap.push(timers[2], at(30));
  heap.push(timers[3], at(20));
  heap.push(timers[4], at(10));
  std::vector<DeadlineTimer*> order;
  while (!heap.empty()) order.push_back(&heap.pop());
  EXPECT_EQ(order, (std::vector<DeadlineTimer*>{&timers[1], &timers[4], &timers[3], &timers[0],
                                                &timers[2]}));
  for (auto& t : timers) EXPECT_FALSE(heap.contains(t));
}

TEST(DeadlineHeap, DropsRemovedEntriesInBulkAndKeepsOrder) {
  // Far more removals than live timers: the stale entries are compacted away.
  constexpr int kTimers = 5000;
  std::vector<DeadlineTimer> timers(kTimers);
  DeadlineHeap heap;
  for (int i = 0; i < kTimers; ++i) {
    timers[i].expire = no_expire;
    heap.push(timers[i], at((i * 7919) % 1000));  // scrambled deadlines with ties
  }
  for (int i = 0; i < kTimers; ++i) {
    if (i % 10 != 0) heap.remove(timers[i]);
  }
  EXPECT_EQ(heap.size(), static_cast<std::size_t>(kTimers / 10));
  std::int64_t previous = -1;
  std::size_t popped = 0;
  while (!heap.empty()) {
    const Time deadline = heap.top_deadline();
    DeadlineTimer& t = heap.pop();
    const auto index = &t - timers.data();
    EXPECT_EQ(index % 10, 0);
    EXPECT_GE(deadline.time_since_epoch().count(), previous);
    previous = deadline.time_since_epoch().count();
    ++popped;
  }
  EXPECT_EQ(popped, static_cast<std::size_t>(kTimers / 10));
}

TEST(DeadlineHeap, TiesKeepRegistrationOrderAcrossTheSequenceWrap) {
  // Registrations are numbered in 32 bits; at the wrap the live entries are renumbered in
  // order. Equal deadlines registered on both sides of it still pop in registration order,
  // and removed entries on either side never come out.
  constexpr int kTimers = 600;
  std::vector<DeadlineTimer> timers(kTimers);
  DeadlineHeap heap(0xFFFF'FFFFu - 250);
  for (int i = 0; i < kTimers; ++i) {
    timers[i].expire = no_expire;
    heap.push(timers[i], at(i % 3));
  }
  for (int i = 0; i < kTimers; i += 7) heap.remove(timers[i]);
  std::vector<DeadlineTimer*> expected;
  for (int deadline = 0; deadline < 3; ++deadline) {
    for (int i = deadline; i < kTimers; i += 3) {
      if (i % 7 != 0) expected.push_back(&timers[i]);
    }
  }
  std::vector<DeadlineTimer*> order;
  while (!heap.empty()) order.push_back(&heap.pop());
  EXPECT_EQ(order, expected);
}

TEST(DeadlineHeap, ManyTimersPopSortedWithExtremeDeadlines) {
  // Enough timers for several levels of sibling groups and for tables past 2 MiB (the
  // huge-page mappings); deadlines span the whole signed range (the key maps signed order
  // onto unsigned order).
  constexpr int kTimers = 150'000;
  std::vector<DeadlineTimer> timers(kTimers);
  std::multimap<std::int64_t, int> model;
  DeadlineHeap heap;
  std::uint64_t state = 12345;
  for (int i = 0; i < kTimers; ++i) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    std::int64_t deadline = static_cast<std::int64_t>(state);
    if (i % 1000 == 0) deadline = std::numeric_limits<std::int64_t>::min();
    if (i % 1000 == 1) deadline = std::numeric_limits<std::int64_t>::max();
    timers[i].expire = no_expire;
    heap.push(timers[i], at(deadline));
    model.emplace(deadline, i);
  }
  for (const auto& [deadline, index] : model) {
    ASSERT_EQ(heap.top_deadline(), at(deadline));
    ASSERT_EQ(&heap.pop(), &timers[index]);
  }
  EXPECT_TRUE(heap.empty());
}

TEST(TableMemory, SmallBlocksAreLineAlignedLargeOnesHugePageAligned) {
  for (const std::size_t bytes : {std::size_t{16}, std::size_t{4096}, kHugePageBytes - 1,
                                  kHugePageBytes, kHugePageBytes + 1, 3 * kHugePageBytes}) {
    auto* block = static_cast<unsigned char*>(allocate_table(bytes));
    const auto address = reinterpret_cast<std::uintptr_t>(block);
    EXPECT_EQ(address % (bytes < kHugePageBytes ? kCacheLineBytes : kHugePageBytes), 0u) << bytes;
    block[0] = 1;  // the whole block is writable
    block[bytes - 1] = 2;
    EXPECT_EQ(block[0] + block[bytes - 1], 3);
    free_table(block, bytes);
  }
}

RC_GTEST_PROP(DeadlineHeap, BehavesLikeAnOrderedMap, ()) {
  constexpr std::size_t kTimers = 64;
  std::vector<std::unique_ptr<DeadlineTimer>> timers;
  for (std::size_t i = 0; i < kTimers; ++i) {
    timers.push_back(std::make_unique<DeadlineTimer>());
    timers.back()->expire = no_expire;
    timers.back()->owner = timers.back().get();
  }
  // Sometimes start numbering registrations just short of the 32-bit wrap, so the run
  // crosses the renumbering.
  const std::uint32_t first_sequence =
      *rc::gen::element<std::uint32_t>(0, 0xFFFF'FFFFu - 30, 0xFFFF'FFFFu - 200);
  DeadlineHeap heap(first_sequence);
  // The model: (deadline, sequence) -> timer index, and each registered timer's key.
  std::map<std::pair<std::int64_t, std::uint64_t>, std::size_t> model;
  std::map<std::size_t, std::pair<std::int64_t, std::uint64_t>> key_of;
  std::uint64_t sequence = 0;
  const auto steps = *rc::gen::inRange<std::size_t>(0, 400);
  for (std::size_t step = 0; step < steps; ++step) {
    const auto op = *rc::gen::inRange(0, 4);
    const auto i = *rc::gen::inRange<std::size_t>(0, kTimers);
    const auto deadline = *rc::gen::inRange<std::int64_t>(0, 20);  // many ties
    DeadlineTimer& timer = *timers[i];
    RC_ASSERT(heap.contains(timer) == key_of.contains(i));
    if (op == 0 && !heap.contains(timer)) {
      heap.push(timer, at(deadline));
      key_of[i] = {deadline, sequence++};
      model[key_of[i]] = i;
    } else if (op == 1 && heap.contains(timer)) {
      heap.remove(timer);
      model.erase(key_of[i]);
      key_of.erase(i);
    } else if (op == 2 && heap.contains(timer)) {
      heap.update(timer, at(deadline));
      model.erase(key_of[i]);
      key_of[i] = {deadline, sequence++};
      model[key_of[i]] = i;
    } else if (op == 3 && !model.empty()) {
      RC_ASSERT(heap.top_deadline() == at(model.begin()->first.first));
      DeadlineTimer& expected = *timers[model.begin()->second];
      if (*rc::gen::arbitrary<bool>()) {
        RC_ASSERT(&heap.pop() == &expected);
      } else {
        // The expiry comes from the heap's copy of the timer's callback and owner.
        const DeadlineHeap::Expiry expiry = heap.pop_expiry();
        const bool right_owner = expiry.owner == static_cast<void*>(&expected);
        const bool right_callback = expiry.expire == &no_expire;
        RC_ASSERT(right_owner);
        RC_ASSERT(right_callback);
      }
      RC_ASSERT(!heap.contains(expected));
      key_of.erase(model.begin()->second);
      model.erase(model.begin());
    }
    RC_ASSERT(heap.size() == model.size());
    RC_ASSERT(heap.empty() == model.empty());
  }
  while (!model.empty()) {
    RC_ASSERT(&heap.pop() == timers[model.begin()->second].get());
    model.erase(model.begin());
  }
  RC_ASSERT(heap.empty());
}

}  // namespace
}  // namespace trellis::internal
