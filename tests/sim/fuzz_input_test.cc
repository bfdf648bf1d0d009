// The fuzzer's byte layout: every byte string decodes, the fields land where the layout says,
// and decoding is a pure function of the bytes.
#include "trellis/sim/fuzz_input.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <vector>

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

TEST(FuzzInput, EmptyInputIsSeedZeroNoFaultsFifo) {
  const FuzzInput in = decode_fuzz_input({});
  EXPECT_EQ(in.seed, 0u);
  EXPECT_TRUE(in.fault_plan.empty());
  EXPECT_TRUE(in.decisions.empty());
}

TEST(FuzzInput, FieldsFollowTheLayout) {
  const std::vector<std::uint8_t> bytes = {0x34, 0x12,  // seed 0x1234
                                           1,           // one fault
                                           1,    0x00, 0x80, 2,
                                           3,    0x00, 0x40, 5,  // partition at horizon/2 ...
                                           7,    8,    9};       // decisions
  const FuzzInput in = decode_fuzz_input(bytes, FuzzLimits{.horizon = 2s});
  EXPECT_EQ(in.seed, 0x1234u);
  ASSERT_EQ(in.fault_plan.faults.size(), 1u);
  const PlannedFault& f = in.fault_plan.faults[0];
  EXPECT_EQ(f.kind, PlannedFault::Kind::kPartition);
  EXPECT_EQ(f.at, 1s);
  EXPECT_EQ(f.a, 2u);
  EXPECT_EQ(f.b, 3u);
  EXPECT_EQ(f.duration, 250ms);  // a quarter of horizon / 2
  EXPECT_EQ(f.latency, 1ms);     // 5 x 200 us
  EXPECT_EQ(in.decisions, (std::vector<std::uint32_t>{7, 8, 9}));
}

RC_GTEST_PROP(FuzzInput, AnyBytesDecodeWithinTheLimits, (const std::vector<std::uint8_t>& bytes)) {
  const FuzzLimits limits{.horizon = 1s, .faults_max = 3, .decisions_max = 16};
  const FuzzInput in = decode_fuzz_input(bytes, limits);
  RC_ASSERT(in.fault_plan.faults.size() <= limits.faults_max);
  RC_ASSERT(in.decisions.size() <= limits.decisions_max);
  for (const PlannedFault& f : in.fault_plan.faults) {
    RC_ASSERT(f.at >= Duration::zero() && f.at < limits.horizon);
    RC_ASSERT(f.duration >= Duration::zero() && f.duration < limits.horizon / 2);
    RC_ASSERT(f.kind < PlannedFault::Kind::kCount);
  }
  const FuzzInput again = decode_fuzz_input(bytes, limits);
  RC_ASSERT(again.seed == in.seed);
  RC_ASSERT(again.fault_plan == in.fault_plan);
  RC_ASSERT(again.decisions == in.decisions);
}

}  // namespace
}  // namespace trellis::sim
