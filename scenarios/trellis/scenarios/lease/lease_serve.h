// trellis/scenarios/lease/lease_serve.h — the lease server as a real program:
// `trellis serve lease`.
//
//   trellis serve lease --options=port=7200,lease_ms=150
//
// Serves a LeaseServer on host:port (port 0: any; the line printed says which) on the epoll
// backend, on the real clock, until SIGINT, then returns 0. Production code only: the same
// LeaseServer the simulator tests (nodes must be given the same lease duration).
#pragma once

#include <cstdio>
#include <map>
#include <string>

namespace trellis::scenarios::lease {

// Options: port (default 0), host (default 127.0.0.1), lease_ms (default 150). Throws
// std::invalid_argument for an unknown option, a bad port or lease; OSError if the port
// cannot be bound.
int serve_lease(const std::map<std::string, std::string>& options, std::FILE* out);

// The option help of serve_lease.
std::map<std::string, std::string> serve_lease_option_help();

}  // namespace trellis::scenarios::lease
