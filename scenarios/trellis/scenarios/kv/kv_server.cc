// trellis/scenarios/kv/kv_server.cc — see kv_server.h.

#include "trellis/scenarios/kv/kv_server.h"

#include <stdexcept>
#include <vector>

#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/trellis.h"

namespace trellis::scenarios::kv {

std::map<std::string, std::string> serve_replica_option_help() {
  return {{"directory", "(required) where the replica keeps its write-ahead log"},
          {"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"}};
}

int serve_replica(const std::map<std::string, std::string>& options, std::FILE* out) {
  const std::map<std::string, std::string> help = serve_replica_option_help();
  for (const auto& [key, value] : options) {
    if (help.count(key) == 0) {
      throw std::invalid_argument("kv serve: unknown option '" + key +
                                  "' (options: directory, port, host)");
    }
  }
  const auto directory = options.find("directory");
  if (directory == options.end() || directory->second.empty()) {
    throw std::invalid_argument("kv serve: the option directory=PATH is required");
  }
  std::uint16_t port = 0;
  if (const auto it = options.find("port"); it != options.end()) {
    std::size_t used = 0;
    int value = -1;
    try {
      value = std::stoi(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != it->second.size() || value < 0 || value > 65535) {
      throw std::invalid_argument("kv serve: bad port '" + it->second + "'");
    }
    port = static_cast<std::uint16_t>(value);
  }
  const auto host_it = options.find("host");
  const std::string host = host_it == options.end() ? "127.0.0.1" : host_it->second;

  try {
    trellis::run([&] {
      KvReplica replica = KvReplica::open({.directory = directory->second});
      open_nursery([&](Nursery& nursery) {
        using Listeners = std::vector<SocketListener*>;
        const Listeners listeners = nursery.start<Listeners>(
            [&](TaskStatus<Listeners>& status) { replica.serve(port, host, &status); });
        const SocketAddress address = listeners.front()->local_address();
        std::fprintf(out, "serving kv replica on %s (directory %s, %zu stores recovered)\n",
                     address.to_string().c_str(), directory->second.c_str(),
                     replica.recovered_stores());
        std::fflush(out);
      });
    });
  } catch (const KeyboardInterrupt&) {
    std::fprintf(out, "stopped by SIGINT\n");
    std::fflush(out);
    return 0;
  }
  return 0;
}

}  // namespace trellis::scenarios::kv
