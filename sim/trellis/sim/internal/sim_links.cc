#include "trellis/sim/internal/sim_links.h"

#include <algorithm>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {

SimLinks::SimLinks(const NetworkConfig& config, Prng& prng) : config_(config), prng_(prng) {
  TRELLIS_ASSERT(config_.latency_min <= config_.latency_max);
  TRELLIS_ASSERT(config_.retransmit_timeout > Duration::zero());
}

const SimLinks::Link* SimLinks::find(std::uint32_t from, std::uint32_t to) const {
  auto it = links_.find({from, to});
  return it == links_.end() ? nullptr : &it->second;
}

bool SimLinks::up(const HostState& from, const HostState& to, Time now) const {
  if (&from == &to) return true;
  const Link* link = find(from.index, to.index);
  return link == nullptr || (!link->partitioned && link->clogged_until <= now);
}

Duration SimLinks::latency(const HostState* from, const HostState* to) {
  Duration low = config_.latency_min;
  Duration high = config_.latency_max;
  if (from != nullptr && to != nullptr && from != to) {
    const Link* link = find(from->index, to->index);
    if (link != nullptr && link->latency_max > Duration::zero()) {
      low = link->latency_min;
      high = link->latency_max;
    }
  }
  TRELLIS_ASSERT(Duration::zero() <= low && low <= high);
  const auto span = static_cast<std::uint64_t>((high - low).count());
  return low + Duration(static_cast<Duration::rep>(prng_.below(span + 1)));
}

Time SimLinks::retry_time(const HostState& from, const HostState& to, Time now) const {
  const Link* link = find(from.index, to.index);
  TRELLIS_ASSERT(link != nullptr);  // only a mentioned link is ever down
  if (!link->partitioned) return std::max(now, link->clogged_until);
  return now + config_.retransmit_timeout;
}

void SimLinks::set_partitioned(std::uint32_t from, std::uint32_t to, bool partitioned) {
  links_[{from, to}].partitioned = partitioned;
}

void SimLinks::clog(std::uint32_t from, std::uint32_t to, Time until) {
  Link& link = links_[{from, to}];
  link.clogged_until = std::max(link.clogged_until, until);
}

void SimLinks::set_latency(std::uint32_t from, std::uint32_t to, Duration low, Duration high) {
  TRELLIS_ASSERT(Duration::zero() <= low && low <= high);
  Link& link = links_[{from, to}];
  link.latency_min = low;
  link.latency_max = high;
}

}  // namespace trellis::sim::internal
