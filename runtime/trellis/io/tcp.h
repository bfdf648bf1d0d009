// trellis/io/tcp.h — TCP the Trio way: open_tcp_stream (with Happy Eyeballs),
// open_tcp_listeners and serve_tcp.
//
//   // Client: tries every address "example.com" resolves to, staggered by 250 ms.
//   trellis::SocketStream stream = trellis::open_tcp_stream("example.com", 80);
//
//   // Server on an ephemeral port, reporting its listeners through Nursery::start:
//   trellis::open_nursery([](trellis::Nursery& n) {
//     auto listeners = n.start<std::vector<trellis::SocketListener*>>(
//         [](trellis::TaskStatus<std::vector<trellis::SocketListener*>>& status) {
//           trellis::serve_tcp(echo, 0, {.host = "127.0.0.1", .task_status = &status});
//         });
//     std::uint16_t port = listeners[0]->local_address().port();
//     ...
//   });
//
// Written only against the run's NetworkFacet/IoFacet: the same code runs in the simulator.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trellis/core/nursery.h"
#include "trellis/core/time.h"
#include "trellis/io/socket_stream.h"

namespace trellis {

// Trio's default backlog: as large as the kernel allows (it clamps to somaxconn).
inline constexpr int kListenBacklogMax = 0xFFFF;
inline constexpr Duration kHappyEyeballsDelayDefault = std::chrono::milliseconds(250);

// Connects to host:port. Resolves host (on a worker thread on the real backend; a numeric
// address needs no lookup), reorders the results as RFC 6555 section 5.4 says (the first
// address of another family moves to second place), then runs Happy Eyeballs: attempts start
// in that order, each one as soon as the previous attempt failed or `happy_eyeballs_delay`
// passed since it started; the first connection made wins and every other attempt is
// cancelled and its socket closed. Blocks; a checkpoint.
// Throws std::invalid_argument (empty host), OSError with a negative EAI_* errno_value
// ("resolve no.such.name:80 (EAI_NONAME)") when the name does not resolve, and OSError
// "all attempts to connect to host:port failed: <each attempt's error>" when every attempt
// failed; its errno_value is the attempts' common errno (ECONNREFUSED for a closed port)
// or, when they differ, the errno of the attempt that failed first.
SocketStream open_tcp_stream(const std::string& host, std::uint16_t port,
                             Duration happy_eyeballs_delay = kHappyEyeballsDelayDefault);

// Opens one listening socket per address host:port resolves to (host empty: 0.0.0.0 and ::,
// i.e. every IPv4 and IPv6 interface). SO_REUSEADDR on every socket; IPV6_V6ONLY on IPv6
// ones, so the IPv4 and IPv6 listeners coexist. Port 0: the kernel picks a free port for each
// listener (local_address() tells which). Families the system lacks (EAFNOSUPPORT) are
// skipped. Not a checkpoint unless host must be resolved (then it blocks).
// Throws OSError naming the failing call and address ("bind to 0.0.0.0:80 (EADDRINUSE)");
// then every socket opened so far is closed. OSError EAFNOSUPPORT if no family worked.
std::vector<std::unique_ptr<SocketListener>> open_tcp_listeners(std::uint16_t port,
                                                                const std::string& host = "",
                                                                int backlog = kListenBacklogMax);

struct ServeTcpOptions {
  std::string host{};  // empty: every interface, IPv4 and IPv6
  int backlog = kListenBacklogMax;
  // Where handler tasks run; nullptr: a nursery inside serve_tcp.
  Nursery* handler_nursery = nullptr;
  // Reported (started(listeners)) once the server accepts; the pointers stay valid while
  // serve_tcp runs.
  TaskStatus<std::vector<SocketListener*>>* task_status = nullptr;
};

// open_tcp_listeners(port, host, backlog) + serve_listeners(handler, ...): runs
// handler(stream) in a new task for every connection (the stream is closed after the handler
// returns). Survives running out of descriptors (EMFILE/ENFILE) or memory: it sleeps 100 ms
// and retries. Never returns normally (cancel it to stop the server). Blocks; a checkpoint.
// Throws what open_tcp_listeners throws, and a handler's exception (through the handler
// nursery).
void serve_tcp(std::function<void(SocketStream&)> handler, std::uint16_t port,
               ServeTcpOptions options = {});

// "host:port", or "[host]:port" for an IPv6 literal (Trio's format_host_port).
std::string format_host_port(const std::string& host, std::uint16_t port);

}  // namespace trellis
