// trellis_fresh_bench: the workloads a user's test binary or a server meets cold, one fresh
// process per measurement (bench/fresh/run.sh alternates the arms and takes medians).
//
//   trellis_fresh_bench ARM WORKLOAD N
//     ARM      trellis | context   (context: raw Boost.Context, each fiber given a stack when it
//                                   first runs, stacks recycled through a free list: the floor)
//     WORKLOAD spawn     N tasks started in one nursery, joined by its exit: ns per task
//              sleepers  N tasks each sleep a fixed pseudo-random delay in [0, 100] ms on the
//                        real clock: wall ms, mean and max lateness of a wake-up
//              idle      N tasks parked at once (each has run one step): bytes per parked task
//
// Prints one line: RESULT arm=... workload=... n=... value=... unit=... peak_rss_kb=...
// [extra=...]. The in-process Google Benchmark binary (trellis_bench) measures warm loops;
// these are the cold figures.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <queue>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>

#include "trellis/trellis.h"

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long rss_kb() {
  long total = 0;
  long resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &total, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

long peak_rss_kb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A fixed pseudo-random delay in [0, 100] ms for task i (SplitMix64 of i).
std::int64_t delay_ns(long i) {
  std::uint64_t z = static_cast<std::uint64_t>(i) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<std::int64_t>(z % 100'000'001ull);
}

void report(const char* arm, const char* workload, long n, double value, const char* unit,
            const std::string& extra = "") {
  std::printf("RESULT arm=%s workload=%s n=%ld value=%.3f unit=%s peak_rss_kb=%ld%s%s\n", arm,
              workload, n, value, unit, peak_rss_kb(), extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
}

struct Lateness {
  std::int64_t sum = 0;
  std::int64_t max = 0;
  void add(std::int64_t late) {
    sum += late;
    max = std::max(max, late);
  }
  std::string describe(long n) const {
    char text[96];
    std::snprintf(text, sizeof text, "late_mean_us=%.1f late_max_us=%.1f",
                  static_cast<double>(sum) / 1e3 / static_cast<double>(n),
                  static_cast<double>(max) / 1e3);
    return text;
  }
};

// ---- Trellis, as a user writes it ---------------------------------------------------------

void trellis_spawn(long n) {
  long done = 0;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  trellis::run([&] {
    begin = now_ns();
    trellis::open_nursery([&](trellis::Nursery& nursery) {
      for (long i = 0; i < n; ++i) nursery.start_soon([&done] { ++done; });
    });
    end = now_ns();
  });
  if (done != n) std::abort();
  report("trellis", "spawn", n, static_cast<double>(end - begin) / static_cast<double>(n),
         "ns/task");
}

void trellis_sleepers(long n) {
  Lateness lateness;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  trellis::run([&] {
    begin = now_ns();
    trellis::open_nursery([&](trellis::Nursery& nursery) {
      for (long i = 0; i < n; ++i) {
        nursery.start_soon([&lateness, i] {
          const std::int64_t delay = delay_ns(i);
          const std::int64_t start = now_ns();
          trellis::sleep(std::chrono::nanoseconds(delay));
          lateness.add(now_ns() - start - delay);
        });
      }
    });
    end = now_ns();
  });
  report("trellis", "sleepers", n, static_cast<double>(end - begin) / 1e6, "ms_wall",
         lateness.describe(n));
}

void trellis_idle(long n) {
  long before = 0;
  long parked = 0;
  trellis::run([&] {
    trellis::Event go;
    long waiting = 0;
    before = rss_kb();
    trellis::open_nursery([&](trellis::Nursery& nursery) {
      for (long i = 0; i < n; ++i) {
        nursery.start_soon([&] {
          ++waiting;
          go.wait();
        });
      }
      trellis::lowlevel::wait_all_tasks_blocked();
      if (waiting != n) std::abort();
      parked = rss_kb();
      go.set();
    });
  });
  report("trellis", "idle", n,
         static_cast<double>(parked - before) * 1024.0 / static_cast<double>(n), "bytes/task");
}

// ---- the floor: raw Boost.Context, stacks given at first run and recycled ------------------

namespace ctx = boost::context;

// Stacks of the default size from a free list; never returned to the system.
class RecyclingStacks {
 public:
  explicit RecyclingStacks(std::vector<void*>& free) : free_(&free) {}
  ctx::stack_context allocate() {
    void* memory = nullptr;
    if (!free_->empty()) {
      memory = free_->back();
      free_->pop_back();
    } else {
      memory = std::malloc(kSize);
      if (memory == nullptr) throw std::bad_alloc();
    }
    ctx::stack_context stack;
    stack.size = kSize;
    stack.sp = static_cast<char*>(memory) + kSize;
    return stack;
  }
  void deallocate(ctx::stack_context& stack) noexcept {
    free_->push_back(static_cast<char*>(stack.sp) - stack.size);
  }

 private:
  static constexpr std::size_t kSize = 256 * 1024;  // Trellis's default
  std::vector<void*>* free_;
};

struct FreeStacks {
  std::vector<void*> list;
  ~FreeStacks() {
    for (void* memory : list) std::free(memory);
  }
};

void context_spawn(long n) {
  FreeStacks stacks;
  long done = 0;
  // A "spawned" task is a queued function until the loop first runs it.
  std::vector<std::function<void()>> queue;
  const std::int64_t begin = now_ns();
  queue.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) queue.emplace_back([&done] { ++done; });
  for (auto& task : queue) {
    ctx::fiber fiber(std::allocator_arg, RecyclingStacks(stacks.list), [&task](ctx::fiber&& back) {
      task();
      return std::move(back);
    });
    fiber = std::move(fiber).resume();
  }
  const std::int64_t end = now_ns();
  if (done != n) std::abort();
  report("context", "spawn", n, static_cast<double>(end - begin) / static_cast<double>(n),
         "ns/task");
}

void context_sleepers(long n) {
  FreeStacks stacks;
  Lateness lateness;
  struct Due {
    std::int64_t at;
    long task;
    bool operator>(const Due& other) const { return at > other.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> timers;
  std::vector<ctx::fiber> fibers(static_cast<std::size_t>(n));
  const std::int64_t begin = now_ns();
  for (long i = 0; i < n; ++i) {
    fibers[static_cast<std::size_t>(i)] =
        ctx::fiber(std::allocator_arg, RecyclingStacks(stacks.list), [&, i](ctx::fiber&& loop) {
          const std::int64_t due = now_ns() + delay_ns(i);
          timers.push({due, i});
          loop = std::move(loop).resume();  // sleeps
          lateness.add(now_ns() - due);
          return std::move(loop);
        });
    fibers[static_cast<std::size_t>(i)] = std::move(fibers[static_cast<std::size_t>(i)]).resume();
  }
  while (!timers.empty()) {
    const Due next = timers.top();
    if (next.at > now_ns()) {
      const timespec at{static_cast<time_t>(next.at / 1'000'000'000),
                        static_cast<long>(next.at % 1'000'000'000)};
      ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
    }
    timers.pop();
    auto& fiber = fibers[static_cast<std::size_t>(next.task)];
    fiber = std::move(fiber).resume();
  }
  const std::int64_t end = now_ns();
  report("context", "sleepers", n, static_cast<double>(end - begin) / 1e6, "ms_wall",
         lateness.describe(n));
}

void context_idle(long n) {
  FreeStacks stacks;
  std::vector<ctx::fiber> fibers(static_cast<std::size_t>(n));
  const long before = rss_kb();
  for (auto& fiber : fibers) {
    fiber = ctx::fiber(std::allocator_arg, RecyclingStacks(stacks.list), [](ctx::fiber&& loop) {
      loop = std::move(loop).resume();  // parked
      return std::move(loop);
    });
    fiber = std::move(fiber).resume();
  }
  const long parked = rss_kb();
  for (auto& fiber : fibers) fiber = std::move(fiber).resume();
  report("context", "idle", n,
         static_cast<double>(parked - before) * 1024.0 / static_cast<double>(n), "bytes/task");
}

int usage() {
  std::fprintf(stderr, "usage: trellis_fresh_bench trellis|context spawn|sleepers|idle N\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return usage();
  const std::string arm = argv[1];
  const std::string workload = argv[2];
  char* end = nullptr;
  const long n = std::strtol(argv[3], &end, 10);
  if (end == argv[3] || *end != '\0' || n <= 0) return usage();
  if (arm == "trellis") {
    if (workload == "spawn") return trellis_spawn(n), 0;
    if (workload == "sleepers") return trellis_sleepers(n), 0;
    if (workload == "idle") return trellis_idle(n), 0;
  } else if (arm == "context") {
    if (workload == "spawn") return context_spawn(n), 0;
    if (workload == "sleepers") return context_sleepers(n), 0;
    if (workload == "idle") return context_idle(n), 0;
  }
  return usage();
}
