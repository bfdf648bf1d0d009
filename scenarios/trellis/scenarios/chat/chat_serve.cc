#include "trellis/scenarios/chat/chat_serve.h"

#include <stdexcept>
#include <vector>

#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/trellis.h"

namespace trellis::scenarios::chat {

std::map<std::string, std::string> serve_chat_option_help() {
  return {{"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"}};
}

int serve_chat(const std::map<std::string, std::string>& options, std::FILE* out) {
  const std::map<std::string, std::string> help = serve_chat_option_help();
  for (const auto& [key, value] : options) {
    if (help.count(key) == 0) {
      throw std::invalid_argument("chat serve: unknown option '" + key + "' (options: port, host)");
    }
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
      throw std::invalid_argument("chat serve: bad port '" + it->second + "'");
    }
    port = static_cast<std::uint16_t>(value);
  }
  const auto host_it = options.find("host");
  const std::string host = host_it == options.end() ? "127.0.0.1" : host_it->second;

  try {
    trellis::run([&] {
      ChatServer server;
      open_nursery([&](Nursery& nursery) {
        using Listeners = std::vector<SocketListener*>;
        const Listeners listeners = nursery.start<Listeners>(
            [&](TaskStatus<Listeners>& status) { server.serve(port, host, &status); });
        std::fprintf(out, "serving chat on %s\n",
                     listeners.front()->local_address().to_string().c_str());
        std::fflush(out);
      });
    });
  } catch (const KeyboardInterrupt&) {
    std::fprintf(out, "stopped by SIGINT\n");
    std::fflush(out);
  }
  return 0;
}

}  // namespace trellis::scenarios::chat
