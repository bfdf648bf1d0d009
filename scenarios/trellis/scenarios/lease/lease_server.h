// trellis/scenarios/lease/lease_server.h — a lock service handing out one lease at a time
// (Chubby-style, one lease): a node that asks gets the lease for `lease` time by the server's
// clock, unless another node holds an unexpired one. Production code: only the runtime API.
//
//   LeaseServer server({.lease = 150ms});
//   server.serve(7200);   // runs until cancelled
//
// Protocol, one line each way per request, any number of requests per connection:
//   A <node>   ->  G             granted (or renewed) for `lease` from now, by the server's clock
//              ->  H <holder>    another node holds an unexpired lease
//              ->  W             the server is in its start-up grace period
//   malformed  ->  E <reason>    and the connection is closed
// Start-up grace: the server keeps no state across restarts, so a fresh server grants nothing
// for one lease duration — any lease an earlier incarnation granted has expired by then.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/nursery.h"
#include "trellis/core/time.h"
#include "trellis/io/socket_stream.h"

namespace trellis::scenarios::lease {

inline constexpr std::size_t kNodeNameBytesMax = 32;

// Throws std::invalid_argument unless name is 1..kNodeNameBytesMax bytes of [A-Za-z0-9._-].
void check_node_name(std::string_view name);

class LeaseServer {
 public:
  struct Options {
    Duration lease = std::chrono::milliseconds(150);
    // The server's clock; empty: current_time. (Tests give a host a clock that runs fast or
    // slow.)
    std::function<Time()> clock{};
  };

  struct Statistics {
    std::uint64_t grants = 0;
    std::uint64_t refusals = 0;  // H and W answers
  };

  // Starts the grace period. Must run inside a run (it reads the clock). Throws
  // std::invalid_argument for a lease <= 0.
  explicit LeaseServer(Options options);
  LeaseServer(const LeaseServer&) = delete;
  LeaseServer& operator=(const LeaseServer&) = delete;

  // Serves on port (0: any; reported through task_status) until cancelled. Blocks; a
  // checkpoint; throws OSError when the port cannot be bound.
  void serve(std::uint16_t port, std::string host = {},
             TaskStatus<std::vector<SocketListener*>>* task_status = nullptr);
  // Answers one request line (see above). Not a checkpoint.
  std::string handle(std::string_view request);

  Statistics statistics() const noexcept { return statistics_; }

 private:
  Time now() const;
  void handle_connection(SocketStream& stream);

  Options options_;
  Time grace_until_;
  // Invariant: holder_ is empty or holds the lease until expiry_ (server clock); a request
  // from another node is refused until then.
  std::string holder_;
  Time expiry_{};
  Statistics statistics_;
};

}  // namespace trellis::scenarios::lease
