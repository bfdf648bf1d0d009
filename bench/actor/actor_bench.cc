// trellis_actor_bench — issue 19's figures, each against its floor measured in the same run:
//   1. the round trip of Portal::run on a trivial function against a raw TCP request/response
//      round trip between two processes on loopback (blocking sockets, 4-byte messages;
//      goal: <= 1.5x the floor);
//   2. MsgStream messages per second one way (a context streaming ints to its caller)
//      beside a raw socket's (a child writing 16-byte records that the parent reads).
//
//   build/release/bench/trellis_actor_bench [round_trips] [messages] [rounds]
//
// The round trips run in `rounds` pairs of blocks (raw TCP, then Portal::run, round_trips
// each), so that both arms see the same machine load; the figures are each arm's median
// block and the ratio of the medians (per-round ratios follow, to show the spread).
// Timing uses the real clock (a benchmark is allowed to: tidy's rule exempts bench/).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "trellis/actor.h"
#include "trellis/trellis.h"

namespace {

using Clock = std::chrono::steady_clock;

int nop(int x) {
  return x;
}
TRELLIS_ACTOR_FUNCTION("bench.nop", nop);

int stream_ints(trellis::actor::Context& ctx, int n) {
  ctx.started(0);
  trellis::actor::MsgStream stream = ctx.open_stream();
  for (int i = 0; i < n; ++i) stream.send(i);
  stream.close();
  return n;
}
TRELLIS_ACTOR_FUNCTION("bench.stream_ints", stream_ints);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void io_exact(int fd, char* data, std::size_t size, bool write) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        write ? ::write(fd, data + done, size - done) : ::read(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<std::size_t>(n);
  }
}

// A listening loopback socket and a forked child connected to it; returns {parent's fd, pid}.
// The child runs `child(fd)` and exits.
template <class F>
std::pair<int, pid_t> connected_child(F child) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::abort();
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::_Exit(1);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    child(fd);
    std::_Exit(0);
  }
  const int fd = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {fd, pid};
}

void finish(int fd, pid_t pid) {
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// A forked child answering `total` 4-byte pings; the blocks of pings are timed by the caller.
struct RawPingPong {
  explicit RawPingPong(int total) {
    std::tie(fd, pid) = connected_child([total](int child_fd) {
      char message[4];
      for (int i = 0; i < total; ++i) {
        io_exact(child_fd, message, sizeof message, false);
        io_exact(child_fd, message, sizeof message, true);
      }
    });
  }
  ~RawPingPong() { finish(fd, pid); }
  RawPingPong(const RawPingPong&) = delete;
  RawPingPong& operator=(const RawPingPong&) = delete;

  double round_trip_us(int round_trips) const {
    char message[4] = {1, 2, 3, 4};
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < round_trips; ++i) {
      io_exact(fd, message, sizeof message, true);
      io_exact(fd, message, sizeof message, false);
    }
    return seconds_since(start) * 1e6 / round_trips;
  }

  int fd = -1;
  pid_t pid = 0;
};

double portal_round_trip_us(trellis::actor::Portal& portal, int round_trips) {
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < round_trips; ++i) {
    if (portal.run<int>("bench.nop", i) != i) std::abort();
  }
  return seconds_since(start) * 1e6 / round_trips;
}

// This process's CPU time (user, system) in microseconds.
std::pair<double, double> cpu_us() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
  return {us(usage.ru_utime), us(usage.ru_stime)};
}

// Runs `block` and adds the calling process's CPU time per round trip to `user`, `system`.
template <class F>
double with_cpu(F block, int round_trips, std::pair<double, double>& sum) {
  const std::pair<double, double> before = cpu_us();
  const double wall_us = block();
  const std::pair<double, double> after = cpu_us();
  sum.first += (after.first - before.first) / round_trips;
  sum.second += (after.second - before.second) / round_trips;
  return wall_us;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double raw_tcp_messages_per_second(int messages) {
  auto [fd, pid] = connected_child([messages](int child_fd) {
    char record[16] = {};
    for (int i = 0; i < messages; ++i) io_exact(child_fd, record, sizeof record, true);
  });
  char record[16];
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < messages; ++i) io_exact(fd, record, sizeof record, false);
  const double seconds = seconds_since(start);
  finish(fd, pid);
  return messages / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  trellis::actor::maybe_run_actor(argc, argv);
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int messages = argc > 2 ? std::atoi(argv[2]) : 200000;
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const double raw_rate = raw_tcp_messages_per_second(messages);
  std::vector<double> raw_us;
  std::vector<double> portal_us;
  double stream_rate = 0;
  std::pair<double, double> raw_cpu;  // summed over the rounds: user, system
  std::pair<double, double> portal_cpu;
  RawPingPong raw(round_trips * rounds);
  trellis::run([&] {
    trellis::actor::open_actor_nursery([&](trellis::actor::ActorNursery& an) {
      trellis::actor::Portal& portal = an.start_actor("bench");
      for (int i = 0; i < 100; ++i) (void)portal.run<int>("bench.nop", i);  // warm up
      for (int round = 0; round < rounds; ++round) {
        raw_us.push_back(
            with_cpu([&] { return raw.round_trip_us(round_trips); }, round_trips, raw_cpu));
        portal_us.push_back(with_cpu([&] { return portal_round_trip_us(portal, round_trips); },
                                     round_trips, portal_cpu));
      }
      trellis::actor::ContextHandle ctx = portal.open_context("bench.stream_ints", messages);
      (void)ctx->first<int>();
      trellis::actor::MsgStream stream = ctx->open_stream();
      const Clock::time_point start = Clock::now();
      for (int i = 0; i < messages; ++i) {
        if (stream.receive<int>() != i) std::abort();
      }
      stream_rate = messages / seconds_since(start);
      if (ctx.result<int>() != messages) std::abort();
    });
  });
  const double portal_median = median(portal_us);
  const double raw_median = median(raw_us);
  std::printf(
      "round trip: Portal::run %.1f us, raw TCP %.1f us, ratio %.2fx (goal <= 1.5x; medians of %d "
      "rounds of %d)\n",
      portal_median, raw_median, portal_median / raw_median, rounds, round_trips);
  std::printf("  per round (Portal::run/raw us):");
  for (int round = 0; round < rounds; ++round) {
    std::printf(" %.1f/%.1f", portal_us[static_cast<std::size_t>(round)],
                raw_us[static_cast<std::size_t>(round)]);
  }
  std::printf("\n");
  std::printf(
      "  the calling process's CPU per round trip (mean): Portal::run %.2f us user + %.2f us "
      "system, raw TCP %.2f + %.2f\n",
      portal_cpu.first / rounds, portal_cpu.second / rounds, raw_cpu.first / rounds,
      raw_cpu.second / rounds);
  std::printf("one way: MsgStream %.0f msg/s, raw TCP %.0f msg/s (16-byte records), ratio %.2f\n",
              stream_rate, raw_rate, stream_rate / raw_rate);
  return 0;
}
