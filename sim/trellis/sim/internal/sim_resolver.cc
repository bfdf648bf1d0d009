#include "trellis/sim/internal/sim_resolver.h"

#include <netdb.h>
#include <sys/socket.h>

#include <optional>

#include "trellis/base/assert.h"
#include "trellis/core/run.h"

namespace trellis::sim::internal {

IoResult<std::vector<SocketAddress>> SimResolver::resolve(const std::string& host,
                                                          std::uint16_t port, int family) {
  using Result = IoResult<std::vector<SocketAddress>>;
  HostState& caller = world_.caller("resolve");
  sleep(config_.resolve_latency);  // blocks the task, cancellable, as a real lookup
  // The host may have crashed meanwhile (a stale caller's host is down or restarted).
  if (world_.caller_down(caller)) return {{}, EAI_AGAIN};
  if (family != AF_UNSPEC && family != AF_INET) return {{}, EAI_FAMILY};
  std::vector<SocketAddress> out;
  if (std::optional<SocketAddress> numeric = SocketAddress::parse(host, port)) {
    if (numeric->family() != AF_INET) return {{}, EAI_FAMILY};
    out.push_back(*numeric);
    return Result{out, 0};
  }
  std::vector<std::string> addresses;
  if (host == "localhost") addresses.push_back("127.0.0.1");
  if (addresses.empty() && world_.resolve_name) addresses = world_.resolve_name(host);
  if (addresses.empty()) return {{}, EAI_NONAME};
  for (const std::string& address : addresses) out.push_back(*SocketAddress::parse(address, port));
  TRELLIS_ASSERT(!out.empty());
  return Result{out, 0};
}

}  // namespace trellis::sim::internal
