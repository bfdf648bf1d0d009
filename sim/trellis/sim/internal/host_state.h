// trellis/sim/internal/host_state.h — what the simulator's parts share about a host.
#pragma once

#include <cstdint>
#include <string>

namespace trellis::sim::internal {

struct HostState {
  // Index in the world (add_host order); also the key of links.
  std::uint32_t index = 0;
  std::string name;
  std::string address;  // numeric IPv4
  // Invariant: alive is false from crash() until restart(); every network operation of a
  // dead host fails with ENETDOWN.
  bool alive = true;
  // Bumped by each crash: sockets and events of an earlier incarnation are void.
  std::uint64_t incarnation = 0;
};

}  // namespace trellis::sim::internal
