#include "trellis/scenarios/lease/lease_serve.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "trellis/scenarios/lease/lease_server.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/scenarios/serve_until_sigint.h"

namespace trellis::scenarios::lease {

std::map<std::string, std::string> serve_lease_option_help() {
  return {{"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"},
          {"lease_ms", "150: lease duration in milliseconds (the nodes must use the same)"}};
}

int serve_lease(const std::map<std::string, std::string>& options, std::FILE* out) {
  check_serve_options("lease serve", options, serve_lease_option_help());
  const auto port =
      static_cast<std::uint16_t>(integer_option("lease serve", options, "port", 0, 0, 65535));
  const int lease_ms = integer_option("lease serve", options, "lease_ms", 150, 1, 3'600'000);
  const std::string host = string_option(options, "host", "127.0.0.1");

  return serve_until_sigint(
      out, port, host, [&] { return LeaseServer({.lease = std::chrono::milliseconds(lease_ms)}); },
      [&](const LeaseServer&, const SocketAddress& address) {
        return "serving lease on " + address.to_string() + " (lease " + std::to_string(lease_ms) +
               " ms)";
      });
}

}  // namespace trellis::scenarios::lease
