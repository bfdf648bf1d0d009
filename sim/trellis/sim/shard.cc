#include "trellis/sim/shard.h"

#include <charconv>
#include <cstdlib>
#include <limits>

#include "trellis/base/assert.h"

namespace trellis::sim {
namespace {

// The value shown in an error: at most 40 printable characters.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c >= 32 && c < 127) ? c : '?';
  if (s.size() > 40) out += "...";
  return out;
}

// Decimal digits only (no sign, no space, no "0x"), within uint64.
std::uint64_t parse_number(std::string_view text, std::string_view what) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const bool digits_only =
      !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (!digits_only || ec != std::errc() || ptr != end) {
    throw ShardError(std::string(what) + ": '" + shown(text) + "' is not a decimal number");
  }
  return value;
}

std::uint64_t parse_total(std::string_view text, std::string_view what) {
  const std::uint64_t total = parse_number(text, what);
  if (total == 0 || total > kShardsMax) {
    throw ShardError(std::string(what) + ": the number of shards must be 1.." +
                     std::to_string(kShardsMax) + ", got " + shown(text));
  }
  return total;
}

Shard make_shard(std::uint64_t index, std::uint64_t total, std::string_view what) {
  TRELLIS_ASSERT(total >= 1);
  if (index >= total) {
    throw ShardError(std::string(what) + ": shard index " + std::to_string(index) +
                     " is not below the number of shards " + std::to_string(total) +
                     " (indexes count from 0)");
  }
  return Shard{index, total};
}

bool given(const std::optional<std::string>& value) {
  return value && !value->empty();
}

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS: both or neither.
std::optional<Shard> gtest_shard(const ShardInputs& in) {
  if (!given(in.gtest_index) && !given(in.gtest_total)) return std::nullopt;
  if (!given(in.gtest_index) || !given(in.gtest_total)) {
    throw ShardError(given(in.gtest_index)
                         ? "GTEST_SHARD_INDEX is set but GTEST_TOTAL_SHARDS is not"
                         : "GTEST_TOTAL_SHARDS is set but GTEST_SHARD_INDEX is not");
  }
  const std::uint64_t total = parse_total(*in.gtest_total, "GTEST_TOTAL_SHARDS");
  return make_shard(parse_number(*in.gtest_index, "GTEST_SHARD_INDEX"), total, "GTEST_SHARD_INDEX");
}

// JOB_COMPLETION_INDEX with its total from --shards, else TRELLIS_SHARDS.
std::optional<Shard> job_shard(const ShardInputs& in) {
  if (!given(in.job_index)) return std::nullopt;
  const std::uint64_t index = parse_number(*in.job_index, "JOB_COMPLETION_INDEX");
  if (!given(in.shards_flag) && !given(in.trellis_total)) {
    throw ShardError(
        "JOB_COMPLETION_INDEX is set but the number of shards is not: pass --shards=N or set "
        "TRELLIS_SHARDS (the Job's completions)");
  }
  const std::uint64_t total = given(in.shards_flag)
                                  ? parse_total(*in.shards_flag, "--shards")
                                  : parse_total(*in.trellis_total, "TRELLIS_SHARDS");
  if (given(in.shards_flag) && given(in.trellis_total) &&
      parse_total(*in.trellis_total, "TRELLIS_SHARDS") != total) {
    throw ShardError("--shards=" + shown(*in.shards_flag) +
                     " contradicts TRELLIS_SHARDS=" + shown(*in.trellis_total));
  }
  return make_shard(index, total, "JOB_COMPLETION_INDEX");
}

// The shard the environment names (GoogleTest's or a Kubernetes Job's), if any.
std::optional<Shard> environment_shard(const ShardInputs& in) {
  const std::optional<Shard> gtest = gtest_shard(in);
  const std::optional<Shard> job = job_shard(in);
  if (gtest && job && !(*gtest == *job)) {
    throw ShardError("GTEST_SHARD_INDEX/GTEST_TOTAL_SHARDS name shard " + gtest->name() +
                     " but JOB_COMPLETION_INDEX names shard " + job->name());
  }
  if (gtest) return gtest;
  if (job) return job;
  if (given(in.trellis_total)) {
    throw ShardError("TRELLIS_SHARDS is set but no shard index is (JOB_COMPLETION_INDEX)");
  }
  return std::nullopt;
}

}  // namespace

std::string Shard::name() const {
  return std::to_string(index) + "/" + std::to_string(total);
}

SeedSlice SeedSlice::range(std::uint64_t base, std::uint64_t count) {
  if (count > 0 && count - 1 > std::numeric_limits<std::uint64_t>::max() - base) {
    throw ShardError("the seeds " + std::to_string(base) + ".. (" + std::to_string(count) +
                     " of them) go past the largest seed");
  }
  return SeedSlice{base, 1, count};
}

SeedSlice SeedSlice::shard(std::uint64_t index, std::uint64_t total) const {
  TRELLIS_ASSERT(stride >= 1);
  if (total == 0 || index >= total) {
    throw ShardError("shard index " + std::to_string(index) + " out of " + std::to_string(total) +
                     " shards");
  }
  // Elements index, index + total, ... below count: ceil((count - index) / total).
  const std::uint64_t n = index < count ? (count - index - 1) / total + 1 : 0;
  // Overflow-free: stride * total only matters while a second element exists, and that
  // element is an element of this slice.
  const std::uint64_t step = n > 1 ? stride * total : stride;
  const SeedSlice out{n > 0 ? at(index) : first, step, n};
  TRELLIS_ASSERT(out.count <= count);
  return out;
}

std::uint64_t SeedSlice::at(std::uint64_t i) const {
  TRELLIS_ASSERT(i < count);
  return first + i * stride;
}

bool SeedSlice::contains(std::uint64_t seed) const {
  if (count == 0 || seed < first) return false;
  const std::uint64_t offset = seed - first;
  return offset % stride == 0 && offset / stride < count;
}

Shard parse_shard(std::string_view text, std::string_view what) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw ShardError(std::string(what) + ": expected I/N (shard I of N, from 0), got '" +
                     shown(text) + "'");
  }
  const std::uint64_t total = parse_total(text.substr(slash + 1), what);
  return make_shard(parse_number(text.substr(0, slash), what), total, what);
}

ShardInputs ShardInputs::from_environment(const std::string& shard_flag,
                                          const std::string& shards_flag) {
  ShardInputs in;
  if (!shard_flag.empty()) in.shard_flag = shard_flag;
  if (!shards_flag.empty()) in.shards_flag = shards_flag;
  in.gtest_index = env("GTEST_SHARD_INDEX");
  in.gtest_total = env("GTEST_TOTAL_SHARDS");
  in.job_index = env("JOB_COMPLETION_INDEX");
  in.trellis_total = env("TRELLIS_SHARDS");
  return in;
}

Shard resolve_shard(const ShardInputs& in) {
  std::optional<Shard> shard;
  if (given(in.shard_flag)) {
    shard = parse_shard(*in.shard_flag, "--shard");
  } else {
    shard = environment_shard(in);
  }
  if (given(in.shards_flag)) {
    const std::uint64_t total = parse_total(*in.shards_flag, "--shards");
    if (!shard) {
      throw ShardError("--shards=" + shown(*in.shards_flag) +
                       " without a shard index: pass --shard=I/N, or set JOB_COMPLETION_INDEX");
    }
    if (shard->total != total) {
      throw ShardError("--shards=" + std::to_string(total) + " contradicts shard " + shard->name());
    }
  }
  return shard.value_or(Shard{});
}

}  // namespace trellis::sim
