#include "trellis/scenarios/lease/lease_serve.h"

#include <stdexcept>
#include <vector>

#include "trellis/scenarios/lease/lease_server.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/trellis.h"

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

  try {
    trellis::run([&] {
      LeaseServer server({.lease = std::chrono::milliseconds(lease_ms)});
      open_nursery([&](Nursery& nursery) {
        using Listeners = std::vector<SocketListener*>;
        const Listeners listeners = nursery.start<Listeners>(
            [&](TaskStatus<Listeners>& status) { server.serve(port, host, &status); });
        std::fprintf(out, "serving lease on %s (lease %d ms)\n",
                     listeners.front()->local_address().to_string().c_str(), lease_ms);
        std::fflush(out);
      });
    });
  } catch (const KeyboardInterrupt&) {
    std::fprintf(out, "stopped by SIGINT\n");
    std::fflush(out);
  }
  return 0;
}

}  // namespace trellis::scenarios::lease
