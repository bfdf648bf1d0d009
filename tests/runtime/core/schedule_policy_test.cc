// Tests of the default SchedulePolicy (Trio's randomized batch order) and of the policy hook.
//
// Method: three tasks loop on checkpoint() and log their ids; each batch holds all three,
// so the log shows the order the policy chose for every batch.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "trellis/trellis.h"

namespace trellis {
namespace {

std::vector<int> trace(RunOptions options) {
  std::vector<int> log;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          for (int id = 0; id < 3; ++id) {
            n.start_soon([&log, id] {
              for (int round = 0; round < 20; ++round) {
                log.push_back(id);
                checkpoint();
              }
            });
          }
        });
      },
      std::move(options));
  return log;
}

TEST(SchedulePolicy, SameSeedSameOrder) {
  EXPECT_EQ(trace({.schedule_seed = 11}), trace({.schedule_seed = 11}));
}

TEST(SchedulePolicy, DefaultOrderIsWakeOrderOrItsReverse) {
  // Trio's order: each batch runs in wake-up order or reversed, never another permutation.
  const std::vector<int> log = trace({.schedule_seed = 5});
  ASSERT_EQ(log.size(), 60u);
  std::set<std::vector<int>> orders;
  for (std::size_t batch = 0; batch < log.size(); batch += 3) {
    orders.insert({log[batch], log[batch + 1], log[batch + 2]});
  }
  EXPECT_EQ(orders.size(), 2u) << "expected one order and its reverse";
  const std::vector<int> one = *orders.begin();
  const std::vector<int> other = *orders.rbegin();
  EXPECT_EQ(std::vector<int>(one.rbegin(), one.rend()), other);
}

TEST(SchedulePolicy, DifferentSeedsGiveDifferentOrders) {
  std::set<std::vector<int>> traces;
  for (std::uint64_t seed = 0; seed < 10; ++seed) traces.insert(trace({.schedule_seed = seed}));
  EXPECT_GT(traces.size(), 5u);
}

TEST(SchedulePolicy, UnseededRunsDiffer) {
  std::set<std::vector<int>> traces;
  for (int i = 0; i < 10; ++i) traces.insert(trace({}));
  EXPECT_GT(traces.size(), 1u);
}

// A policy that records what it was asked and always picks the last option.
class RecordingPolicy final : public SchedulePolicy {
 public:
  std::size_t choose(std::size_t n, ChoiceKind kind) override {
    asked.push_back({n, kind});
    return n - 1;
  }
  std::vector<std::pair<std::size_t, ChoiceKind>> asked;
};

TEST(SchedulePolicy, CustomPolicyDecidesEveryBatchWithChoose) {
  RecordingPolicy policy;
  const std::vector<int> log = trace({.policy = &policy});
  ASSERT_FALSE(policy.asked.empty());
  for (const auto& [n, kind] : policy.asked) {
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(kind, ChoiceKind::kBatchReverse);
  }
  // Always reversing: consecutive batches alternate between two mirrored orders.
  EXPECT_EQ(log, trace({.policy = &policy}));
}

TEST(SchedulePolicy, TrioPolicyChoosesInRange) {
  TrioPolicy policy(3);
  std::set<std::size_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::size_t choice = policy.choose(7, ChoiceKind::kUser);
    ASSERT_LT(choice, 7u);
    seen.insert(choice);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(policy.choose(1, ChoiceKind::kUser), 0u);
}

}  // namespace
}  // namespace trellis
