// trellis/scenarios/lease/lease_node.h — a node competing for leadership through a
// LeaseServer: it asks for the lease every poll_interval, renews it every renew_interval
// while it holds it, and is the leader while its lease is valid BY ITS OWN CLOCK — it never
// asks anyone before acting. Production code: only the runtime API.
//
//   LeaseNode node({.server = "10.0.0.1", .name = "node1"});
//   nursery.start_soon([&] { node.run(); });
//   if (node.is_leader()) do_leader_work();   // no checkpoint between the check and the act
//
// Why that is safe: the node counts its lease from the moment it SENT the request (the
// server granted it later, so the server's lease ends later), and shortens it for clock
// drift. Clocks here run at a rate within clock_drift_ppm_max of true time, so `lease` on the
// server's clock lasts at least lease / (1 + r) of true time, and the node's
// lease * (1 - r) / (1 + r) on its own clock lasts at most lease / (1 + r): the node always
// stops being leader before the server can grant the lease to anyone else.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "trellis/core/time.h"
#include "trellis/io/socket_stream.h"

namespace trellis::scenarios::lease {

class LeaseNode {
 public:
  struct Options {
    std::string server;
    std::uint16_t port = 7200;
    std::string name;  // unique among the server's nodes (check_node_name)
    Duration lease = std::chrono::milliseconds(150);  // the server's lease duration
    // Bound on how far any host's clock rate is off, in parts per million (< 1'000'000).
    std::uint32_t clock_drift_ppm_max = 50'000;
    Duration renew_interval = std::chrono::milliseconds(40);   // while leader
    Duration poll_interval = std::chrono::milliseconds(10);    // while not
    Duration request_timeout = std::chrono::milliseconds(50);  // connect, or one answer
    Duration reconnect_backoff = std::chrono::milliseconds(10);
    // The node's clock; empty: current_time.
    std::function<Time()> clock{};
    // The planted bug of the lease scenario: the node trusts its clock, counting the full
    // lease from when the grant ARRIVED, with no margin for drift. Off by default.
    bool trust_local_clock = false;
  };

  struct Statistics {
    std::uint64_t requests = 0;
    std::uint64_t grants = 0;
    std::uint64_t timeouts = 0;  // connects and requests that got no answer in time
  };

  // Throws std::invalid_argument for an empty server, a bad name, drift >= 1'000'000 ppm,
  // a lease too short for the drift margin, or renew_interval >= the node's lease.
  explicit LeaseNode(Options options);
  LeaseNode(const LeaseNode&) = delete;
  LeaseNode& operator=(const LeaseNode&) = delete;

  // Competes for the lease until cancelled, reconnecting as needed. on_grant, if set, is
  // called with the new expiry (node's clock) each time a grant or renewal is accepted.
  // Blocks; a checkpoint; throws only Cancelled (and what on_grant throws).
  [[noreturn]] void run(const std::function<void(Time expiry)>& on_grant = {});

  // Whether the node's lease is valid now by its own clock. Not a checkpoint.
  bool is_leader() const { return now() < expiry_; }
  // The end of the node's lease, by its clock (Time{} before the first grant).
  Time lease_expiry() const noexcept { return expiry_; }
  // How long the node trusts a grant, counted from the request (its own clock).
  Duration trusted_lease() const noexcept { return trusted_lease_; }
  Statistics statistics() const noexcept { return statistics_; }

 private:
  Time now() const;
  // One connection: returns when it broke or an answer did not come in time.
  void session(SocketStream& stream, const std::function<void(Time)>& on_grant);

  Options options_;
  Duration trusted_lease_;
  // Invariant: only grows (a later grant never ends sooner).
  Time expiry_{};
  Statistics statistics_;
};

}  // namespace trellis::scenarios::lease
