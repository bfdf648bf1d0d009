#include "trellis/scenarios/chat/chat_serve.h"

#include <stdexcept>

#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/scenarios/serve_until_sigint.h"

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

  return serve_until_sigint(
      out, port, host, [] { return ChatServer(); },
      [](const ChatServer&, const SocketAddress& address) {
        return "serving chat on " + address.to_string();
      });
}

}  // namespace trellis::scenarios::chat
