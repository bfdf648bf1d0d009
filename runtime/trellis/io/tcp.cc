#include "trellis/io/tcp.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <list>
#include <optional>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/io/serve_listeners.h"
#include "trellis/sync/event.h"

namespace trellis {
namespace {

std::vector<SocketAddress> resolve_or_throw(const std::string& host, std::uint16_t port,
                                            int family) {
  checkpoint_if_cancelled();
  IoResult<std::vector<SocketAddress>> resolved =
      lowlevel::current_network().resolve(host, port, family, SOCK_STREAM);
  if (!resolved.ok()) throw OSError(resolved.error, "resolve " + format_host_port(host, port));
  return std::move(resolved.value);
}

// RFC 6555 section 5.4: after the resolver's first choice, try the other family next.
void reorder_for_rfc_6555(std::vector<SocketAddress>& targets) {
  if (targets.empty()) return;
  const int first_family = targets.front().family();
  for (std::size_t i = 1; i < targets.size(); ++i) {
    if (targets[i].family() != first_family) {
      SocketAddress moved = targets[i];
      targets.erase(targets.begin() + static_cast<std::ptrdiff_t>(i));
      targets.insert(targets.begin() + 1, std::move(moved));
      return;
    }
  }
}

}  // namespace

std::string format_host_port(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

SocketStream open_tcp_stream(const std::string& host, std::uint16_t port,
                             Duration happy_eyeballs_delay) {
  if (host.empty()) throw std::invalid_argument("open_tcp_stream: host must not be empty");
  if (happy_eyeballs_delay < Duration::zero()) {
    throw std::invalid_argument("open_tcp_stream: happy_eyeballs_delay must be >= 0");
  }
  std::vector<SocketAddress> targets = resolve_or_throw(host, port, AF_UNSPEC);
  if (targets.empty()) {
    throw OSError(EAI_NONAME,
                  "no results found for hostname lookup: " + format_host_port(host, port));
  }
  reorder_for_rfc_6555(targets);

  std::optional<Socket> winner;
  // One per attempt, in attempt order: "<what failed> (<errno name>)" and the errno.
  std::vector<std::string> failures;
  std::vector<int> failure_errnos;
  // Stable addresses: an attempt may set its event after the loop moved on.
  std::list<Event> attempt_failed;
  open_nursery([&](Nursery& nursery) {
    for (const SocketAddress& target : targets) {
      Event& failed = attempt_failed.emplace_back();
      nursery.start_soon(SpawnOptions{.name = "open_tcp_stream attempt " + target.to_string()},
                         [&nursery, &winner, &failures, &failure_errnos, &failed, target] {
                           try {
                             Socket socket = Socket::open(target.family(), SOCK_STREAM);
                             socket.connect(target);
                             // Two attempts may connect in the same batch: the first one wins, the
                             // other socket closes as it goes out of scope.
                             if (!winner.has_value()) {
                               winner.emplace(std::move(socket));
                               nursery.cancel_scope().cancel();
                             }
                           } catch (const OSError& error) {
                             failures.push_back(error.what());
                             failure_errnos.push_back(error.errno_value());
                             failed.set();
                           }
                         });
      (void)move_on_after(happy_eyeballs_delay, [&] { failed.wait(); });
    }
  });
  if (!winner.has_value()) {
    TRELLIS_ASSERT(failures.size() == targets.size());
    int error = failure_errnos.front();
    std::string message = "all attempts to connect to " + format_host_port(host, port) + " failed";
    for (std::size_t i = 0; i < failures.size(); ++i) {
      message += (i == 0 ? ": " : "; ") + failures[i];
    }
    throw OSError(error, message);
  }
  return SocketStream(std::move(*winner));
}

std::vector<std::unique_ptr<SocketListener>> open_tcp_listeners(std::uint16_t port,
                                                                const std::string& host,
                                                                int backlog) {
  if (backlog < 0) throw std::invalid_argument("open_tcp_listeners: backlog must be >= 0");
  if (backlog > kListenBacklogMax) backlog = kListenBacklogMax;
  std::vector<SocketAddress> targets;
  if (host.empty()) {
    // getaddrinfo(NULL, port, AI_PASSIVE) on Linux: the IPv4 and IPv6 wildcards.
    targets.push_back(*SocketAddress::parse("0.0.0.0", port));
    targets.push_back(*SocketAddress::parse("::", port));
  } else {
    targets = resolve_or_throw(host, port, AF_UNSPEC);
  }
  std::vector<std::unique_ptr<SocketListener>> listeners;
  std::size_t unsupported = 0;
  for (const SocketAddress& target : targets) {
    Socket socket;
    try {
      socket = Socket::open(target.family(), SOCK_STREAM);
    } catch (const OSError& error) {
      if (error.errno_value() != EAFNOSUPPORT) throw;
      ++unsupported;
      continue;
    }
    socket.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
    if (target.family() == AF_INET6) socket.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    socket.bind(target);
    socket.listen(backlog);
    listeners.push_back(std::make_unique<SocketListener>(std::move(socket)));
  }
  if (listeners.empty()) {
    throw OSError(unsupported > 0 ? EAFNOSUPPORT : EAI_NONAME,
                  "open_tcp_listeners on " + format_host_port(host.empty() ? "*" : host, port) +
                      ": no usable address");
  }
  return listeners;
}

void serve_tcp(std::function<void(SocketStream&)> handler, std::uint16_t port,
               ServeTcpOptions options) {
  std::vector<std::unique_ptr<SocketListener>> listeners =
      open_tcp_listeners(port, options.host, options.backlog);
  serve_listeners<SocketListener>(
      std::move(handler), std::move(listeners),
      {.handler_nursery = options.handler_nursery, .task_status = options.task_status});
}

}  // namespace trellis
