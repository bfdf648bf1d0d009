// trellis/scenarios/chat/chat_serve.h — the chat server as a real program: `trellis serve chat`.
//
//   trellis serve chat --options=port=7100,host=127.0.0.1
//
// Serves a ChatServer on host:port (port 0: any; the line printed says which) on the epoll
// backend until SIGINT, then returns 0. Production code only: the same ChatServer the
// simulator tests.
#pragma once

#include <cstdio>
#include <map>
#include <string>

namespace trellis::scenarios::chat {

// Options: port (default 0), host (default 127.0.0.1). Throws std::invalid_argument for an
// unknown option or a bad port; OSError if the port cannot be bound.
int serve_chat(const std::map<std::string, std::string>& options, std::FILE* out);

// The option help of serve_chat.
std::map<std::string, std::string> serve_chat_option_help();

}  // namespace trellis::scenarios::chat
