// trellis_to_process_bench — issue 18's two figures, each against its floor measured in the
// same run:
//   1. the round trip of a trivial to_process::run_sync against a raw pipe ping-pong between
//      two processes (goal: <= 2x the floor). The two are measured in alternating rounds
//      and compared by their medians, so that a change of the machine's load during the run
//      reaches both alike;
//   2. CPU-bound work, 2 jobs of hashing, in two workers at once against both on the loop
//      thread (goal on 2 idle cores: >= 1.8x). On a machine shared with other work the wall
//      time says little, so CPU time is reported beside it: each job measures the CPU time
//      and the interval (system-wide monotonic clock) it ran, in the process that ran it.
//      "cores busy" is CPU seconds per wall second; "overlap" is the share of the parallel
//      phase in which both jobs were running at once; the CPU speed-up is the ratio of cores
//      busy, parallel over serial — what the workers obtained, whatever the load.
//
//   build/release/bench/trellis_to_process_bench [round_trips] [hash_rounds] [repetitions]
// Timing uses the real clock (a benchmark is allowed to: tidy's rule exempts bench/).
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

std::uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// One hashing job as its process saw it.
struct Job {
  std::uint64_t hash = 0;
  std::uint64_t cpu_ns = 0;    // the thread's CPU time (user + system) while hashing
  std::uint64_t start_ns = 0;  // CLOCK_MONOTONIC: comparable between processes
  std::uint64_t end_ns = 0;
};

// hash_rounds, measured where it runs: {hash, cpu ns, start ns, end ns}.
std::vector<std::uint64_t> timed_hash(std::uint64_t rounds) {
  const std::uint64_t start = clock_ns(CLOCK_MONOTONIC);
  const std::uint64_t cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  const std::uint64_t h = hash_rounds(rounds);
  const std::uint64_t cpu_end = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  return {h, cpu_end - cpu_start, start, clock_ns(CLOCK_MONOTONIC)};
}
TRELLIS_WORKER_FUNCTION("bench.timed_hash", timed_hash);

Job to_job(const std::vector<std::uint64_t>& v) {
  if (v.size() != 4) std::abort();
  return {v[0], v[1], v[2], v[3]};
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
  char byte = 'x';
  if (::write(to_child[1], &byte, 1) != 1 || ::read(to_parent[0], &byte, 1) != 1) std::abort();
  const auto start = Clock::now();
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

struct Phase {
  double wall = 0;     // seconds
  double cpu = 0;      // CPU seconds of the jobs, summed
  double overlap = 0;  // seconds during which both jobs ran
  double cores() const { return cpu / wall; }
};

double overlap_seconds(const Job& x, const Job& y) {
  const std::uint64_t start = std::max(x.start_ns, y.start_ns);
  const std::uint64_t end = std::min(x.end_ns, y.end_ns);
  return end > start ? static_cast<double>(end - start) / 1e9 : 0.0;
}

// {both jobs on the loop thread, one job in each of two workers at once}.
std::pair<Phase, Phase> hashing(std::uint64_t rounds) {
  std::pair<Phase, Phase> out;
  trellis::run([&] {
    trellis::open_nursery([&](trellis::Nursery& n) {  // start both workers first
      for (int i = 0; i < 2; ++i) {
        n.start_soon([] { trellis::to_process::run_sync<std::uint64_t>("bench.hash", 1); });
      }
    });
    auto start = Clock::now();
    const Job first = to_job(timed_hash(rounds));
    const Job second = to_job(timed_hash(rounds + 1));
    out.first.wall = seconds_since(start);
    out.first.cpu = static_cast<double>(first.cpu_ns + second.cpu_ns) / 1e9;
    out.first.overlap = overlap_seconds(first, second);
    Job jobs[2];
    start = Clock::now();
    trellis::open_nursery([&](trellis::Nursery& n) {
      for (int i = 0; i < 2; ++i) {
        n.start_soon([&, i] {
          jobs[i] = to_job(trellis::to_process::run_sync<std::vector<std::uint64_t>>(
              "bench.timed_hash", rounds + static_cast<std::uint64_t>(i)));
        });
      }
    });
    out.second.wall = seconds_since(start);
    out.second.cpu = static_cast<double>(jobs[0].cpu_ns + jobs[1].cpu_ns) / 1e9;
    out.second.overlap = overlap_seconds(jobs[0], jobs[1]);
    // The workers computed the same hashes.
    if (jobs[0].hash != first.hash || jobs[1].hash != second.hash) std::abort();
  });
  return out;
}

void print_load(const char* when) {
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) == 3) {
    std::printf("load average %s: %.2f %.2f %.2f (%ld CPUs online)\n", when, load[0], load[1],
                load[2], ::sysconf(_SC_NPROCESSORS_ONLN));
  }
}

}  // namespace

int main(int argc, char** argv) {
  trellis::to_process::maybe_run_worker(argc, argv);
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::uint64_t rounds = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 250'000'000ull;
  const int repetitions = std::max(1, argc > 3 ? std::atoi(argv[3]) : 5);
  print_load("before");

  std::vector<double> floor_us;
  std::vector<double> trellis_us;
  for (int r = 0; r < repetitions; ++r) {  // alternating, so both see the same load
    floor_us.push_back(pipe_ping_pong_us(round_trips));
    trellis_us.push_back(run_sync_round_trip_us(round_trips));
  }
  const double floor_median = median(floor_us);
  const double trellis_median = median(trellis_us);
  std::printf(
      "round trip (median of %d x %d): raw pipe ping-pong %.2f us, run_sync %.2f us, ratio "
      "%.2fx (goal <= 2x)\n",
      repetitions, round_trips, floor_median, trellis_median, trellis_median / floor_median);
  std::printf("  each round: ");
  for (int r = 0; r < repetitions; ++r) {
    std::printf("%s%.2f/%.2f", r == 0 ? "" : ", ", trellis_us[static_cast<std::size_t>(r)],
                floor_us[static_cast<std::size_t>(r)]);
  }
  std::printf(" us (run_sync/raw)\n");

  std::vector<double> wall_speedup;
  std::vector<double> cpu_speedup;
  for (int r = 0; r < repetitions; ++r) {
    const auto [serial, parallel] = hashing(rounds);
    wall_speedup.push_back(serial.wall / parallel.wall);
    cpu_speedup.push_back(parallel.cores() / serial.cores());
    std::printf(
        "2 hashing jobs, round %d: loop thread %.3f s wall, %.3f CPU s (%.2f cores busy); "
        "two workers %.3f s wall, %.3f CPU s (%.2f cores busy, both running %.0f%% of the "
        "time)\n",
        r + 1, serial.wall, serial.cpu, serial.cores(), parallel.wall, parallel.cpu,
        parallel.cores(), 100 * parallel.overlap / parallel.wall);
  }
  std::printf(
      "2 hashing jobs (median of %d): wall speed-up %.2fx (goal >= 1.8x on idle cores), CPU "
      "speed-up (cores busy, parallel / serial) %.2fx\n",
      repetitions, median(wall_speedup), median(cpu_speedup));
  print_load("after");
  return 0;
}
