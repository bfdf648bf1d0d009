#include "trellis/scenarios/lease/lease_serve.h"

#include <stdexcept>
#include <vector>

#include "trellis/scenarios/lease/lease_server.h"
#include "trellis/trellis.h"

namespace trellis::scenarios::lease {
namespace {

// A decimal integer option in [low, high], else std::invalid_argument naming it.
int integer_option(const std::map<std::string, std::string>& options, const std::string& key,
                   int fallback, int low, int high) {
  const auto it = options.find(key);
  if (it == options.end()) return fallback;
  std::size_t used = 0;
  int value = low - 1;
  try {
    value = std::stoi(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != it->second.size() || value < low || value > high) {
    throw std::invalid_argument("lease serve: bad " + key + " '" + it->second + "'");
  }
  return value;
}

}  // namespace

std::map<std::string, std::string> serve_lease_option_help() {
  return {{"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"},
          {"lease_ms", "150: lease duration in milliseconds (the nodes must use the same)"}};
}

int serve_lease(const std::map<std::string, std::string>& options, std::FILE* out) {
  const std::map<std::string, std::string> help = serve_lease_option_help();
  for (const auto& [key, value] : options) {
    if (help.count(key) == 0) {
      throw std::invalid_argument("lease serve: unknown option '" + key +
                                  "' (options: port, host, lease_ms)");
    }
  }
  const auto port = static_cast<std::uint16_t>(integer_option(options, "port", 0, 0, 65535));
  const int lease_ms = integer_option(options, "lease_ms", 150, 1, 3'600'000);
  const auto host_it = options.find("host");
  const std::string host = host_it == options.end() ? "127.0.0.1" : host_it->second;

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
