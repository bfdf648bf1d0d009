// trellis/sim/internal/sim_resolver.h — SimResolver: name resolution in a simulated world
// (NetworkFacet::resolve): numeric addresses, "localhost", and the world's host names, after
// the configured resolve_latency (the calling task blocks, cancellably, as on a real lookup).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/core/io_facet.h"
#include "trellis/core/socket_address.h"
#include "trellis/sim/internal/world_view.h"
#include "trellis/sim/network_config.h"

namespace trellis::sim::internal {

class SimResolver {
 public:
  SimResolver(const NetworkConfig& config, const WorldView& world)
      : config_(config), world_(world) {}

  // Errors as getaddrinfo's: EAI_AGAIN (the caller's host went down meanwhile), EAI_FAMILY,
  // EAI_NONAME. Throws UsageError outside every host, Cancelled if cancelled while waiting.
  IoResult<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port,
                                               int family);

 private:
  const NetworkConfig& config_;
  const WorldView& world_;
};

}  // namespace trellis::sim::internal
