// trellis/scenarios/kv/kv_server.cc — see kv_server.h.

#include "trellis/scenarios/kv/kv_server.h"

#include <stdexcept>

#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/scenarios/serve_until_sigint.h"

namespace trellis::scenarios::kv {

std::map<std::string, std::string> serve_replica_option_help() {
  return {{"directory", "(required) where the replica keeps its write-ahead log"},
          {"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"}};
}

int serve_replica(const std::map<std::string, std::string>& options, std::FILE* out) {
  check_serve_options("kv serve", options, serve_replica_option_help());
  const std::string directory_path = string_option(options, "directory", "");
  if (directory_path.empty()) {
    throw std::invalid_argument("kv serve: the option directory=PATH is required");
  }
  const auto port =
      static_cast<std::uint16_t>(integer_option("kv serve", options, "port", 0, 0, 65535));
  const std::string host = string_option(options, "host", "127.0.0.1");

  return serve_until_sigint(
      out, port, host, [&] { return KvReplica::open({.directory = directory_path}); },
      [&](const KvReplica& replica, const SocketAddress& address) {
        return "serving kv replica on " + address.to_string() + " (directory " + directory_path +
               ", " + std::to_string(replica.recovered_stores()) + " stores recovered)";
      });
}

}  // namespace trellis::scenarios::kv
