// trellis/sim/internal/sim_links.h — SimLinks: the simulated network's links between hosts:
// partitions, clogs and per-link latency (the faults network_config.h describes), and the
// delay each packet draws.
//
// Links are directed (from -> to) and keyed by host index; a link never mentioned is up and
// has the config's latency. Only the latency draw consumes randomness (the world's stream).
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "trellis/base/prng.h"
#include "trellis/core/time.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/network_config.h"

namespace trellis::sim::internal {

class SimLinks {
 public:
  SimLinks(const NetworkConfig& config, Prng& prng);

  // True if packets from -> to get through at now (a host always reaches itself).
  bool up(const HostState& from, const HostState& to, Time now) const;
  // A packet's delay from -> to (either may be nullptr: the config's latency). Draws from
  // the PRNG.
  Duration latency(const HostState* from, const HostState* to);
  // When a TCP segment held back on the link from -> to is tried again: when the clog ends,
  // or after the retransmit timeout while partitioned.
  Time retry_time(const HostState& from, const HostState& to, Time now) const;

  void set_partitioned(std::uint32_t from, std::uint32_t to, bool partitioned);
  // The link stays clogged until at least `until`.
  void clog(std::uint32_t from, std::uint32_t to, Time until);
  // Packets from -> to take [low, high] instead of the config's latency; high == 0 restores
  // the config's.
  void set_latency(std::uint32_t from, std::uint32_t to, Duration low, Duration high);

 private:
  struct Link {
    bool partitioned = false;
    Time clogged_until{};
    // Invariant: latency_min <= latency_max; latency_max == 0 means the config's latency.
    Duration latency_min{};
    Duration latency_max{};
  };
  const Link* find(std::uint32_t from, std::uint32_t to) const;

  const NetworkConfig& config_;
  Prng& prng_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, Link> links_;
};

}  // namespace trellis::sim::internal
