#include "trellis/scenarios/chat/chat_serve.h"

#include <stdexcept>
#include <vector>

#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/trellis.h"

namespace trellis::scenarios::chat {

std::map<std::string, std::string> serve_chat_option_help() {
  return {{"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"}};
}

int serve_chat(const std::map<std::string, std::string>& options, std::FILE* out) {
  check_serve_options("chat serve", options, serve_chat_option_help());
  const auto port =
      static_cast<std::uint16_t>(integer_option("chat serve", options, "port", 0, 0, 65535));
  const std::string host = string_option(options, "host", "127.0.0.1");

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
