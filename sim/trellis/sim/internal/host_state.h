// trellis/sim/internal/host_state.h — what the simulator's parts share about a host.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "trellis/sim/program.h"

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
  // Fake programs installed on the host (Host::install_program), by name.
  std::map<std::string, Program> programs;
};

}  // namespace trellis::sim::internal
