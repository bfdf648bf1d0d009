// trellis_to_process_bench — issue 18's two figures, each against its floor measured in the
// same run:
//   1. the round trip of a trivial to_process::run_sync against a raw pipe ping-pong between
//      two processes (goal: <= 2x the floor);
//   2. CPU-bound work, 2 jobs of hashing, in two workers at once against both on the loop
//      thread (goal on 2 cores: >= 1.8x).
//
//   build/release/bench/trellis_to_process_bench [round_trips] [hash_rounds]
// Timing uses the real clock (a benchmark is allowed to: tidy's rule exempts bench/).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "trellis/to_process.h"
#include "trellis/trellis.h"

namespace {

using Clock = std::chrono::steady_clock;

int nop(int x) {
  return x;
}
TRELLIS_WORKER_FUNCTION("bench.nop", nop);

// FNV-1a over a counter, `rounds` times: CPU-bound, no memory traffic.
std::uint64_t hash_rounds(std::uint64_t rounds) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    h ^= i;
    h *= 1099511628211ull;
  }
  return h;
}
TRELLIS_WORKER_FUNCTION("bench.hash", hash_rounds);

// CPU seconds used by reaped children so far (the workers, once their run has ended).
double children_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A parent and a forked child bounce one byte over two pipes: the floor of a round trip.
double pipe_ping_pong_us(int round_trips) {
  int to_child[2];
  int to_parent[2];
  if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) std::abort();
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(to_child[1]);  // else the child's own write end keeps its read from ending
    ::close(to_parent[0]);
    char byte;
    while (::read(to_child[0], &byte, 1) == 1) {
      if (::write(to_parent[1], &byte, 1) != 1) break;
    }
    ::_exit(0);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  const auto start = Clock::now();
  char byte = 'x';
  for (int i = 0; i < round_trips; ++i) {
    if (::write(to_child[1], &byte, 1) != 1 || ::read(to_parent[0], &byte, 1) != 1) std::abort();
  }
  const double us = seconds_since(start) * 1e6 / round_trips;
  ::close(to_child[1]);
  ::close(to_parent[0]);
  ::waitpid(child, nullptr, 0);
  return us;
}

double run_sync_round_trip_us(int round_trips) {
  double us = 0;
  trellis::run([&] {
    trellis::to_process::run_sync<int>("bench.nop", 0);  // start the worker first
    const auto start = Clock::now();
    for (int i = 0; i < round_trips; ++i) {
      if (trellis::to_process::run_sync<int>("bench.nop", i) != i) std::abort();
    }
    us = seconds_since(start) * 1e6 / round_trips;
  });
  return us;
}

// {seconds on the loop thread, seconds in two workers} for two jobs of `rounds`.
std::pair<double, double> hashing_seconds(std::uint64_t rounds) {
  std::pair<double, double> out;
  trellis::run([&] {
    trellis::open_nursery([&](trellis::Nursery& n) {  // start both workers first
      for (int i = 0; i < 2; ++i)
        n.start_soon([] { trellis::to_process::run_sync<std::uint64_t>("bench.hash", 1); });
    });
    auto start = Clock::now();
    std::uint64_t sink = hash_rounds(rounds) + hash_rounds(rounds + 1);
    out.first = seconds_since(start);
    start = Clock::now();
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int i = 0; i < 2; ++i) {
        n.start_soon([&, i] {
          sink -= trellis::to_process::run_sync<std::uint64_t>("bench.hash", rounds + i);
        });
      }
    });
    out.second = seconds_since(start);
    if (sink != 0) std::abort();  // the workers computed the same hashes
  });
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  trellis::to_process::maybe_run_worker(argc, argv);
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::uint64_t rounds = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 250'000'000ull;
  const double floor_us = pipe_ping_pong_us(round_trips);
  const double trellis_us = run_sync_round_trip_us(round_trips);
  std::printf(
      "round trip: raw pipe ping-pong %.2f us, run_sync %.2f us, ratio %.2fx (goal <= 2x)\n",
      floor_us, trellis_us, trellis_us / floor_us);
  const double cpu_before = children_cpu_seconds();
  const auto [serial, parallel] = hashing_seconds(rounds);
  const double worker_cpu = children_cpu_seconds() - cpu_before;
  std::printf(
      "2 hashing jobs: loop thread %.3f s, two workers %.3f s, speed-up %.2fx (goal >= 1.8x)\n",
      serial, parallel, serial / parallel);
  std::printf("  the workers used %.3f CPU s in %.3f s: %.2f cores busy on average\n", worker_cpu,
              parallel, worker_cpu / parallel);
  return 0;
}
