// trellis/scenarios/serve_until_sigint.h — the main of `trellis serve SCENARIO`: one server
// of a scenario on the epoll backend, with its banner line, until SIGINT.
//
//   int serve_chat(const Options& options, std::FILE* out) {
//     ...  // parse port and host
//     return serve_until_sigint(
//         out, port, host, [] { return ChatServer(); },
//         [](const ChatServer&, const SocketAddress& address) {
//           return "serving chat on " + address.to_string();
//         });
//   }
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/trellis.h"

namespace trellis::scenarios {

// Writes `line` and a newline to out, and flushes it (a parent process reads it at once).
void write_line(std::FILE* out, const std::string& line);

// Runs main on the epoll backend (trellis::run) until SIGINT stops it, then writes "stopped
// by SIGINT" to out and returns 0. Any other error propagates.
int run_until_sigint(std::FILE* out, const std::function<void()>& main);

// Inside run_until_sigint: makes the server with open() (in the run: it may do I/O, as a
// replica recovering its log does), runs server.serve(port, host, &status) in a nursery, and
// once it listens writes banner(server, address of its first listener) to out as one line.
// Returns 0 after SIGINT. Open: () -> Server; Banner: (const Server&, const SocketAddress&)
// -> std::string.
template <class Open, class Banner>
int serve_until_sigint(std::FILE* out, std::uint16_t port, const std::string& host, Open open,
                       Banner banner) {
  return run_until_sigint(out, [&] {
    auto server = open();
    open_nursery([&](Nursery& nursery) {
      using Listeners = std::vector<SocketListener*>;
      const Listeners listeners = nursery.start<Listeners>(
          [&](TaskStatus<Listeners>& status) { server.serve(port, host, &status); });
      write_line(out, banner(std::as_const(server), listeners.front()->local_address()));
    });
  });
}

}  // namespace trellis::scenarios
