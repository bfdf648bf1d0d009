// The simulator's throughput (issue targets in bench/README.md):
//   SimSteps        task steps per second in a World (target >= 5 million/s)
//   SimMessages     TCP segments delivered per second between two hosts (target >= 1M/s)
//   SimVirtualTime  virtual seconds per real second on a sleep-heavy workload (>= 10,000x)
//   SimSeeds        seeds per second of a 3-host request/response workload, 1,000 requests
// Counters are rates (per second of CPU time of the benchmark loop).
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "trellis/sim.h"

namespace {

using namespace std::chrono_literals;
using trellis::IoHandle;
using trellis::IoResult;
namespace sim = trellis::sim;
namespace lowlevel = trellis::lowlevel;

// Minimal blocking socket calls over the facets (what SocketStream does, without its checks).
IoHandle connect_to(const std::string& host, std::uint16_t port) {
  auto& net = lowlevel::current_network();
  auto addresses = net.resolve(host, port, AF_INET, SOCK_STREAM);
  IoHandle s = net.socket(AF_INET, SOCK_STREAM, 0).value;
  if (net.connect(s, addresses.value.at(0)) == EINPROGRESS) lowlevel::current_io().wait_writable(s);
  if (net.socket_error(s).value != 0) throw trellis::OSError(ECONNREFUSED, "connect");
  return s;
}

IoHandle listen_on(std::uint16_t port) {
  auto& net = lowlevel::current_network();
  IoHandle s = net.socket(AF_INET, SOCK_STREAM, 0).value;
  net.bind(s, *trellis::SocketAddress::parse("0.0.0.0", port));
  net.listen(s, 64);
  return s;
}

IoHandle accept_on(IoHandle listener) {
  for (;;) {
    auto got = lowlevel::current_network().accept(listener);
    if (got.ok()) return got.value.handle;
    lowlevel::current_io().wait_readable(listener);
  }
}

void send_exactly(IoHandle s, const char* data, std::size_t size) {
  while (size > 0) {
    IoResult<std::size_t> n = lowlevel::current_network().send(s, data, size);
    if (n.ok()) {
      data += n.value;
      size -= n.value;
    } else if (n.error == EAGAIN) {
      lowlevel::current_io().wait_writable(s);
    } else {
      throw trellis::OSError(n.error, "send");
    }
  }
}

// Returns false at end of stream.
bool receive_exactly(IoHandle s, char* buffer, std::size_t size) {
  while (size > 0) {
    IoResult<std::size_t> n = lowlevel::current_network().recv(s, buffer, size);
    if (n.ok()) {
      if (n.value == 0) return false;
      buffer += n.value;
      size -= n.value;
    } else if (n.error == EAGAIN) {
      lowlevel::current_io().wait_readable(s);
    } else {
      throw trellis::OSError(n.error, "recv");
    }
  }
  return true;
}

void BM_SimSteps(benchmark::State& state) {
  constexpr int kTasksPerRun = 10;
  constexpr int kStepsPerTask = 10'000;
  std::uint64_t steps = 0;
  std::uint64_t seed = 1;
  for (auto _ : state) {
    sim::World world(sim::Config{.seed = seed++});
    sim::Host& host = world.add_host("h", "10.0.0.1");
    host.start([] {
      trellis::open_nursery([](trellis::Nursery& n) {
        for (int t = 0; t < kTasksPerRun; ++t) {
          n.start_soon([] {
            for (int i = 0; i < kStepsPerTask; ++i) trellis::checkpoint();
          });
        }
      });
    });
    world.run([] { trellis::sleep(1s); });
    steps += static_cast<sim::StepPolicy&>(world.policy()).steps();
  }
  state.counters["steps_per_second"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimSteps)->Unit(benchmark::kMillisecond);

void BM_SimMessages(benchmark::State& state) {
  constexpr int kMessages = 100'000;
  std::uint64_t delivered = 0;
  std::uint64_t seed = 1;
  for (auto _ : state) {
    sim::World world(sim::Config{.seed = seed++});
    sim::Host& server = world.add_host("server", "10.0.0.1");
    sim::Host& client = world.add_host("client", "10.0.0.2");
    server.start([] {
      IoHandle conn = accept_on(listen_on(9));
      char byte = 0;
      while (receive_exactly(conn, &byte, 1)) {
      }
    });
    bool done = false;
    client.start([&] {
      IoHandle s = connect_to("server", 9);
      for (int i = 0; i < kMessages; ++i) send_exactly(s, "x", 1);
      lowlevel::current_network().shutdown(s, SHUT_WR);
      done = true;
    });
    world.run([&] {
      while (!done) trellis::sleep(100ms);
    });
    delivered += world.messages_delivered();
  }
  state.counters["messages_per_second"] =
      benchmark::Counter(static_cast<double>(delivered), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimMessages)->Unit(benchmark::kMillisecond);

void BM_SimVirtualTime(benchmark::State& state) {
  constexpr int kSleepers = 1'000;
  double virtual_seconds = 0;
  std::uint64_t seed = 1;
  for (auto _ : state) {
    sim::World world(sim::Config{.seed = seed++});
    sim::Host& host = world.add_host("h", "10.0.0.1");
    host.start([&world] {
      trellis::open_nursery([&](trellis::Nursery& n) {
        for (int t = 0; t < kSleepers; ++t) {
          const auto period = std::chrono::milliseconds(1 + world.prng().below(60'000));
          n.start_soon([period] {
            for (int i = 0; i < 10; ++i) trellis::sleep(period);
          });
        }
      });
    });
    world.run([] { trellis::sleep(std::chrono::hours(1)); });
    virtual_seconds += std::chrono::duration<double>(world.now().time_since_epoch()).count();
  }
  state.counters["virtual_seconds_per_second"] =
      benchmark::Counter(virtual_seconds, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimVirtualTime)->Unit(benchmark::kMillisecond);

void BM_SimSeeds(benchmark::State& state) {
  constexpr int kRequests = 1'000;
  std::uint64_t seeds = 0;
  for (auto _ : state) {
    sim::World world(sim::Config{.seed = seeds + 1});
    sim::Host& server = world.add_host("server", "10.0.0.1");
    sim::Host& proxy = world.add_host("proxy", "10.0.0.2");
    sim::Host& client = world.add_host("client", "10.0.0.3");
    auto echo = [] {
      IoHandle listener = listen_on(7);
      IoHandle conn = accept_on(listener);
      char request[64];
      while (receive_exactly(conn, request, sizeof request))
        send_exactly(conn, request, sizeof request);
    };
    server.start(echo);
    proxy.start([] {
      IoHandle listener = listen_on(7);
      IoHandle downstream = accept_on(listener);
      IoHandle upstream = connect_to("server", 7);
      char request[64];
      while (receive_exactly(downstream, request, sizeof request)) {
        send_exactly(upstream, request, sizeof request);
        receive_exactly(upstream, request, sizeof request);
        send_exactly(downstream, request, sizeof request);
      }
    });
    bool done = false;
    client.start([&] {
      IoHandle s = connect_to("proxy", 7);
      char buffer[64] = {};
      for (int i = 0; i < kRequests; ++i) {
        send_exactly(s, buffer, sizeof buffer);
        receive_exactly(s, buffer, sizeof buffer);
      }
      done = true;
    });
    world.run([&] {
      while (!done) trellis::sleep(100ms);
    });
    ++seeds;
  }
  state.counters["seeds_per_second"] =
      benchmark::Counter(static_cast<double>(seeds), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimSeeds)->Unit(benchmark::kMillisecond);

}  // namespace
