// bench/tcp_bench.h — what the loopback benchmarks share (tcp_bench.cc, tls_bench.cc): the
// server thread with its CPU clock, the Trellis server run on it, the echo handler, and the
// echo measurement; plus the hook trellis_bench's main() needs from tcp_bench.cc (the idle
// connection benchmarks re-execute the binary as a server child process).
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <string_view>
#include <thread>
#include <vector>

#include "trellis/trellis.h"

namespace trellis_bench {

// The flag that makes trellis_bench a server child: `--idle_connections_child=<mode>:<count>`.
inline constexpr std::string_view kIdleConnectionsChildFlag = "--idle_connections_child=";

// Runs the child with the text after the flag ("trellis:10000" or "asio:10000"); returns the
// process exit code.
int idle_connections_child(std::string_view argument);

// The server's receive buffer per connection (the same in every server compared).
inline constexpr std::size_t kEchoBufferSize = 4096;

// A server running on its own thread, with that thread's CPU clock (less sensitive than wall
// time to other load on the machine).
class ServerThread {
 public:
  double cpu_seconds() const;
  std::uint16_t port() const { return port_; }

 protected:
  // Runs body on the server thread; returns once it set ready_ (rethrowing a failed start).
  void start(std::function<void()> body);
  void join();

  // Invariant: set once, by the server thread, when it accepts connections (or failed).
  std::promise<std::uint16_t> ready_;

 private:
  std::thread thread_;
  clockid_t cpu_clock_ = CLOCK_THREAD_CPUTIME_ID;
  std::uint16_t port_ = 0;
};

// A Trellis server on its own thread: serve(status) runs in a nursery of trellis::run on the
// epoll backend (or, guest, as the guest of an Asio io_context, trellis/asio.h) and reports
// its listeners through status; the port is its first listener's. Destroying it cancels the
// run and joins the thread.
class TrellisServerThread : public ServerThread {
 public:
  using Listeners = std::vector<trellis::SocketListener*>;
  using Serve = std::function<void(trellis::TaskStatus<Listeners>&)>;
  explicit TrellisServerThread(Serve serve, bool guest = false);
  ~TrellisServerThread();

 private:
  void serve_main();
  void serve();
  void serve_as_guest();
  void failed(std::exception_ptr error);

  Serve serve_;
  // Set on the server thread before ready_; used by the destructor to stop the run.
  trellis::CancelScope* scope_ = nullptr;
  trellis::RunToken token_;
};

// One task per connection, the Trio way: every byte back until the peer closes or breaks the
// connection (S: SocketStream, SslStream).
template <class S>
void trellis_echo(S& stream) {
  std::array<std::byte, kEchoBufferSize> buffer;
  try {
    while (const std::size_t n = stream.receive_some(buffer)) stream.send_all({buffer.data(), n});
  } catch (const trellis::BrokenResourceError&) {
    // The client reset the connection (or, over TLS, closed it without close_notify): this
    // connection is over, the server goes on.
  }
}

// The echo benchmarks' loop: round() once per iteration, each a round trip on every one of
// `connections`; reports round_trips (per second of wall time) and, under cpu_counter, the
// server thread's CPU time per round trip.
template <class Round>
void measure_round_trips(benchmark::State& state, const ServerThread& server,
                         std::size_t connections, const char* cpu_counter, Round round) {
  const double cpu_before = server.cpu_seconds();
  for (auto _ : state) round();
  const double cpu_used = server.cpu_seconds() - cpu_before;
  const double round_trips = static_cast<double>(state.iterations()) * connections;
  state.counters["round_trips"] = benchmark::Counter(round_trips, benchmark::Counter::kIsRate);
  state.counters[cpu_counter] = cpu_used / round_trips;
}

}  // namespace trellis_bench
