#include "trellis/core/schedule_policy.h"

#include <algorithm>

#include "trellis/base/assert.h"
#include "trellis/base/prng.h"

namespace trellis {

void SchedulePolicy::order_batch(std::span<lowlevel::Task*> batch) {
  if (batch.size() < 2) return;
  const std::size_t reverse = choose(2, ChoiceKind::kBatchReverse);
  TRELLIS_ASSERT(reverse < 2);
  if (reverse == 1) std::reverse(batch.begin(), batch.end());
}

TrioPolicy::TrioPolicy(std::uint64_t seed) : state_(seed) {}

std::size_t TrioPolicy::choose(std::size_t n, ChoiceKind kind) {
  (void)kind;
  TRELLIS_ASSERT(n >= 1);
  if (n == 1) return 0;
  // SplitMix64 alone is a fine generator for one coin flip per batch, and keeps this policy
  // to 8 bytes of state on the loop's path.
  const std::uint64_t bits = Prng::split_mix64(state_);
  const auto index = static_cast<std::size_t>((static_cast<__uint128_t>(bits) * n) >> 64);
  TRELLIS_ASSERT(index < n);
  return index;
}

}  // namespace trellis
