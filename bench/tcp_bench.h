// bench/tcp_bench.h — the hook trellis_bench's main() needs from tcp_bench.cc: the idle
// connection benchmarks re-execute the binary as a server child process.
#pragma once

#include <string_view>

namespace trellis_bench {

// The flag that makes trellis_bench a server child: `--idle_connections_child=<mode>:<count>`.
inline constexpr std::string_view kIdleConnectionsChildFlag = "--idle_connections_child=";

// Runs the child with the text after the flag ("trellis:10000" or "asio:10000"); returns the
// process exit code.
int idle_connections_child(std::string_view argument);

}  // namespace trellis_bench
