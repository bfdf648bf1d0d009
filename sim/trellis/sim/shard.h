// trellis/sim/shard.h — one slice of a sweep's seeds, for sweeps across many machines.
//
// A sweep of `count` seeds from `base` split into `total` shards gives shard `index` the seeds
// base + i for every i = index (mod total): striding, not contiguous blocks. Why striding:
//   - slow seeds (a seed whose faults make its run long) are spread over every shard instead
//     of landing together in one block, so shards finish at about the same time;
//   - "is seed s in shard k/N" is one modulo, which is how `trellis sweep-merge` checks that the
//     shards' reports partition the range (no seed twice, none missing);
//   - it is the rule the in-process workers (-j) and GoogleTest sharding (shard_seeds) already
//     use, so there is one partition rule. The partition is exact for any N, including N larger
//     than the number of seeds (shards past the last seed get none).
//
//   const Shard shard = resolve_shard(ShardInputs::from_environment("1/4", ""));
//   const SeedSlice seeds = SeedSlice::range(base, count).shard(shard.index, shard.total);
//   for (std::uint64_t i = 0; i < seeds.count; ++i) run(seeds.at(i));
//
// Where a process learns its shard (resolve_shard), first match wins:
//   1. --shard=I/N (an explicit flag overrides the environment: rerun one CI shard locally);
//   2. GoogleTest's sharding variables GTEST_SHARD_INDEX and GTEST_TOTAL_SHARDS (both or none);
//   3. a Kubernetes Indexed Job's JOB_COMPLETION_INDEX, with the total from --shards=N or else
//      TRELLIS_SHARDS;
//   4. none of them: the whole sweep (shard 0/1).
// --shards=N, when given, must agree with the total from 1-3. GTEST_* and JOB_COMPLETION_INDEX
// both set must name the same shard. Anything malformed or contradictory (I >= N, N = 0,
// not a decimal number, an index without a total, a total without an index) throws ShardError:
// a shard that cannot tell which slice it is must never fall back to the full sweep. An empty
// variable counts as unset.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace trellis::sim {

class ShardError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Shards beyond this many are refused (a bound, far above any real fleet).
inline constexpr std::uint64_t kShardsMax = std::uint64_t{1} << 20;

struct Shard {
  std::uint64_t index = 0;
  std::uint64_t total = 1;

  // "I/N", as --shard takes it and reports print it.
  std::string name() const;
  friend bool operator==(const Shard&, const Shard&) = default;
};

// The seeds first, first + stride, ..., first + (count - 1) * stride.
// Invariant: stride >= 1, and the last seed does not overflow (checked where one is made).
struct SeedSlice {
  std::uint64_t first = 0;
  std::uint64_t stride = 1;
  std::uint64_t count = 0;

  // base, base + 1, ..., base + count - 1; throws ShardError if that overflows.
  static SeedSlice range(std::uint64_t base, std::uint64_t count);
  // Slice number `index` of `total` (i = index mod total): the partition described above.
  // Throws ShardError if total == 0 or index >= total.
  SeedSlice shard(std::uint64_t index, std::uint64_t total) const;
  std::uint64_t at(std::uint64_t i) const;  // i < count
  bool contains(std::uint64_t seed) const;
  friend bool operator==(const SeedSlice&, const SeedSlice&) = default;
};

// "I/N": decimal digits only, N in 1..kShardsMax, I < N. Throws ShardError naming `what`.
Shard parse_shard(std::string_view text, std::string_view what = "--shard");

// Everything that can name a shard; nullopt (or an empty string) is "not given".
struct ShardInputs {
  std::optional<std::string> shard_flag;     // --shard=I/N
  std::optional<std::string> shards_flag;    // --shards=N
  std::optional<std::string> gtest_index;    // GTEST_SHARD_INDEX
  std::optional<std::string> gtest_total;    // GTEST_TOTAL_SHARDS
  std::optional<std::string> job_index;      // JOB_COMPLETION_INDEX
  std::optional<std::string> trellis_total;  // TRELLIS_SHARDS

  // The two flags' values ("" = not given) and the four variables from this process's
  // environment.
  static ShardInputs from_environment(const std::string& shard_flag,
                                      const std::string& shards_flag);
};

// The shard, by the precedence above; throws ShardError.
Shard resolve_shard(const ShardInputs& inputs);

}  // namespace trellis::sim
