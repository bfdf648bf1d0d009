// trellis/scenarios/kv/kv_server.h — one KvReplica as a real program: `trellis serve kv`.
//
//   trellis serve kv --options=directory=/tmp/kv0,port=7000
//
// Opens (recovering) the replica's log in `directory`, serves on host:port (port 0: any; the
// line printed says which) on the epoll backend until SIGINT, then closes everything and
// returns 0. Production code only: the same KvReplica the simulator tests.
#pragma once

#include <cstdio>
#include <map>
#include <string>

namespace trellis::scenarios::kv {

// Options: directory (required), port (default 0), host (default 127.0.0.1). Throws
// std::invalid_argument for a missing or unknown option or a bad port; OSError if the port
// cannot be bound or the directory not opened.
int serve_replica(const std::map<std::string, std::string>& options, std::FILE* out);

// The option help of serve_replica.
std::map<std::string, std::string> serve_replica_option_help();

}  // namespace trellis::scenarios::kv
