// Trellis beside its peers, in one binary and one run, so ratios are measured on the same
// machine at the same moment. Each group pairs a Trellis benchmark with peers doing the same
// work: raw Boost.Context (the floor for a fiber switch), Boost.Fiber, Boost.Asio.
//
//   build/bench/bench/trellis_bench                       # everything (about 30 s)
//   build/bench/bench/trellis_bench --benchmark_filter=Yield
//   tools/bench_report.sh                                 # repeated runs, ratios vs targets
//
// Reading the output: "Time"/"CPU" is per benchmark iteration. Counters named per_<thing>
// are seconds per <thing>, printed with an SI prefix ("182.5n" = 182.5 ns). See
// bench/README.md for what each iteration contains and the targets.
//
// Groups:
//   IdleMemory  resident memory per blocked task, 100k tasks, default stack size (target:
//               <= 16 KiB), measured in a fresh child process so that nothing cached by an
//               earlier benchmark hides memory; Boost.Fiber alongside.
//   Yield       one task checkpointing in a loop, two tasks ping-ponging by checkpoint (one
//               iteration = one checkpoint of each = two task switches) vs a raw Boost.Context
//               round trip (resume + the fiber resuming back = two switches; target: Trellis
//               <= 2x) and Boost.Fiber's yield with one and with two fibers.
//   SpawnJoin   100k trivial tasks started in one nursery and joined by its exit (target:
//               <= 250 ns per task) vs 100k Boost.Fiber fibers launched and joined.
//   Timers      100k sleeping tasks with random deadlines under a MockClock autojumping at
//               threshold 0: total time / 100k (target: <= 300 ns per timer); the same with
//               10 sleeps per task (spawn cost amortized); vs 100k Boost.Asio steady_timers
//               run by one io_context.
//   Channel     two tasks ping-ponging an int over two 0-capacity memory channels (one
//               iteration = one round trip: two sends, two receives; target: <= 150 ns) vs
//               Boost.Fiber's unbuffered_channel doing the same; and a producer streaming
//               ints through a 64-slot buffered channel to a consumer (one iteration = one
//               message; every send() is a schedule point, as in Trio) vs Boost.Fiber's
//               buffered_channel.
//   TcpEcho, TcpIdle  in tcp_bench.cc: a Trellis TCP echo server vs a Boost.Asio one.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tcp_bench.h"
#include "trellis/base/prng.h"
#include "trellis/core/internal/deadline_heap.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace {

using namespace std::chrono_literals;

constexpr int kTasks = 100'000;
constexpr int kSleepsPerTask = 10;
constexpr std::uint64_t kSeed = 20240601;
constexpr std::string_view kChildFlag = "--idle_memory_child=";

// Seconds per `count` things in one iteration, from the benchmark's CPU time.
benchmark::Counter per(double count) {
  return benchmark::Counter(
      count, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// ---- IdleMemory ----------------------------------------------------------------------------
//
// The child process (this binary, re-executed with kChildFlag) starts 100k tasks that block,
// samples its memory once all are blocked, releases them, and prints one line:
//   ok <rss_kib> <hwm_kib> <hwm_after_kib> <pte_kib> <heap_bytes> <vmas>
// each a growth over the same figure taken just before the tasks were started (hwm_after: peak
// over the whole run, including the wake-up / cancellation of every task), or "error <text>".

long status_kib(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string word;
  while (status >> word) {
    if (word == key) {
      long kib = 0;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 10, '\n');
  }
  return -1;
}

long mapping_count() {
  std::ifstream maps("/proc/self/maps");
  long lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

long max_map_count() {
  std::ifstream file("/proc/sys/vm/max_map_count");
  long value = -1;
  file >> value;
  return value;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false if not permitted.
bool reset_peak_rss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

std::size_t heap_bytes() {
  const struct mallinfo2 info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

struct MemorySample {
  long rss_kib = 0;
  long hwm_kib = 0;
  long pte_kib = 0;
  std::size_t heap = 0;
  long vmas = 0;
  static MemorySample take() {
    return {status_kib("VmRSS:"), status_kib("VmHWM:"), status_kib("VmPTE:"), heap_bytes(),
            mapping_count()};
  }
};

void print_growth(const MemorySample& before, const MemorySample& idle) {
  std::printf("ok %ld %ld %ld %ld %lld %ld\n", idle.rss_kib - before.rss_kib,
              idle.hwm_kib - before.rss_kib, status_kib("VmHWM:") - before.rss_kib,
              idle.pte_kib - before.pte_kib,
              static_cast<long long>(idle.heap) - static_cast<long long>(before.heap),
              idle.vmas - before.vmas);
}

int idle_memory_child_trellis() {
  MemorySample before;
  MemorySample idle;
  try {
    trellis::fakes::MockClock clock;  // no autojump: the tasks sleep for good
    reset_peak_rss();
    before = MemorySample::take();
    trellis::run(
        [&] {
          trellis::open_nursery([&](trellis::Nursery& nursery) {
            for (int i = 0; i < kTasks; ++i) nursery.start_soon([] { trellis::sleep_forever(); });
            trellis::fakes::wait_all_tasks_blocked();
            idle = MemorySample::take();
            nursery.cancel_scope().cancel();
          });
        },
        {.clock = &clock, .schedule_seed = kSeed});
  } catch (const std::exception& error) {
    std::printf("error %s (vm.max_map_count=%ld, mappings now %ld)\n", error.what(),
                max_map_count(), mapping_count());
    return 1;
  }
  print_growth(before, idle);
  return 0;
}

int idle_memory_child_boost_fiber() {
  MemorySample before;
  MemorySample idle;
  try {
    reset_peak_rss();
    before = MemorySample::take();
    boost::fibers::mutex mutex;
    boost::fibers::condition_variable wake;
    bool done = false;
    int blocked = 0;
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      fibers.emplace_back([&] {
        std::unique_lock lock(mutex);
        ++blocked;
        wake.wait(lock, [&] { return done; });
      });
    }
    while (blocked < kTasks) boost::this_fiber::yield();
    idle = MemorySample::take();
    {
      std::unique_lock lock(mutex);
      done = true;
    }
    wake.notify_all();
    for (boost::fibers::fiber& fiber : fibers) fiber.join();
  } catch (const std::exception& error) {
    std::printf("error %s\n", error.what());
    return 1;
  }
  print_growth(before, idle);
  return 0;
}

int idle_memory_child(std::string_view mode) {
  if (mode == "trellis") return idle_memory_child_trellis();
  if (mode == "boost_fiber") return idle_memory_child_boost_fiber();
  std::printf("error unknown mode\n");
  return 2;
}

void measure_idle_memory(benchmark::State& state, const char* mode) {
  char exe[4096];
  const ssize_t length = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (length <= 0) {
    state.SkipWithError("cannot find /proc/self/exe");
    return;
  }
  exe[length] = '\0';
  const std::string command =
      "'" + std::string(exe) + "' " + std::string(kChildFlag) + mode + " 2>&1";
  std::string output;
  for (auto _ : state) {
    FILE* child = ::popen(command.c_str(), "r");
    if (child == nullptr) {
      state.SkipWithError("popen failed");
      return;
    }
    char buffer[512];
    output.clear();
    while (std::fgets(buffer, sizeof buffer, child) != nullptr) output += buffer;
    ::pclose(child);
  }
  std::istringstream in(output);
  std::string status;
  long rss = 0, hwm = 0, hwm_after = 0, pte = 0, vmas = 0;
  long long heap = 0;
  in >> status >> rss >> hwm >> hwm_after >> pte >> heap >> vmas;
  if (status != "ok" || !in) {
    state.SkipWithError(("child failed: " + output).c_str());
    return;
  }
  state.counters["KiB_per_idle_task"] = static_cast<double>(std::max(rss, hwm)) / kTasks;
  state.counters["KiB_per_task_peak_incl_wakeup"] = static_cast<double>(hwm_after) / kTasks;
  state.counters["heap_B_per_task"] = static_cast<double>(heap) / kTasks;
  state.counters["pagetable_B_per_task"] = static_cast<double>(pte) * 1024 / kTasks;
  state.counters["new_mappings"] = static_cast<double>(vmas);
  state.counters["max_map_count"] = static_cast<double>(max_map_count());
}

void BM_Trellis_IdleTaskMemory(benchmark::State& state) {
  measure_idle_memory(state, "trellis");
}
BENCHMARK(BM_Trellis_IdleTaskMemory)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_BoostFiber_IdleFiberMemory(benchmark::State& state) {
  measure_idle_memory(state, "boost_fiber");
}
BENCHMARK(BM_BoostFiber_IdleFiberMemory)->Unit(benchmark::kMillisecond)->Iterations(1);

// ---- Yield ---------------------------------------------------------------------------------

void BM_Trellis_Checkpoint(benchmark::State& state) {
  // A lone task: the run loop's fast path finds the task itself next in line and does not
  // switch at all, so this is the bookkeeping of a checkpoint without a context switch.
  trellis::run(
      [&] {
        for (auto _ : state) trellis::checkpoint();
      },
      {.schedule_seed = kSeed});
}
BENCHMARK(BM_Trellis_Checkpoint);

void BM_Trellis_CheckpointPingPong(benchmark::State& state) {
  // Two tasks checkpoint in lock step. One iteration = one checkpoint of the measured task and
  // one of its partner = two task switches, as in a Boost.Context round trip.
  trellis::run(
      [&] {
        // Outside the nursery block: the partner still reads it after the block has returned
        // (while the nursery waits for it).
        bool done = false;
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          nursery.start_soon([&] {
            while (!done) trellis::checkpoint();
          });
          trellis::checkpoint();  // let the partner start (it gets its stack on first run)
          for (auto _ : state) trellis::checkpoint();
          done = true;
        });
      },
      {.schedule_seed = kSeed});
}
BENCHMARK(BM_Trellis_CheckpointPingPong);

// A policy that keeps every batch in wake-up order (no coin flip): the same ping-pong with
// strict alternation, to separate the cost of Trio's randomized batch order.
class FifoPolicy final : public trellis::SchedulePolicy {
 public:
  std::size_t choose(std::size_t, trellis::ChoiceKind) override { return 0; }
  void order_batch(std::span<trellis::lowlevel::Task*>) override {}
};

void BM_Trellis_CheckpointPingPongFifo(benchmark::State& state) {
  FifoPolicy fifo;
  trellis::run(
      [&] {
        bool done = false;
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          nursery.start_soon([&] {
            while (!done) trellis::checkpoint();
          });
          trellis::checkpoint();
          for (auto _ : state) trellis::checkpoint();
          done = true;
        });
      },
      {.policy = &fifo});
}
BENCHMARK(BM_Trellis_CheckpointPingPongFifo);

void BM_BoostContext_RoundTrip(benchmark::State& state) {
  // One iteration: resume the fiber, which resumes us straight back (two switches).
  namespace ctx = boost::context;
  ctx::fiber fiber([](ctx::fiber&& caller) {
    for (;;) caller = std::move(caller).resume();
    return std::move(caller);
  });
  for (auto _ : state) fiber = std::move(fiber).resume();
}
BENCHMARK(BM_BoostContext_RoundTrip);

void BM_BoostContext_ColdResume(benchmark::State& state) {
  // The floor under a timer's wake-up: N suspended Boost.Context fibers (256 KiB stacks, the
  // Trellis default, carved from one mapping, each touched once before timing), resumed one
  // after another in a random order (a fresh permutation per round), each switching straight
  // back. One iteration: one round, N resumes. With N = 100k, like the sleepers of
  // BM_Trellis_TimerMarginal, every resume lands on a stack that left the caches and the TLB
  // since its last turn; what that costs is there with any run loop on top.
  namespace ctx = boost::context;
  struct SliceAllocator {
    char* base;
    std::size_t size;
    ctx::stack_context allocate() const {
      ctx::stack_context stack;
      stack.size = size;
      stack.sp = base + size;
      return stack;
    }
    void deallocate(ctx::stack_context&) const noexcept {}
  };
  constexpr std::size_t kStackBytes = 256 * 1024;
  constexpr int kRounds = 10;
  const auto fibers_count = static_cast<std::size_t>(state.range(0));
  const std::size_t region_bytes = fibers_count * kStackBytes;
  void* region = ::mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  std::vector<ctx::fiber> fibers;
  fibers.reserve(fibers_count);
  for (std::size_t i = 0; i < fibers_count; ++i) {
    const SliceAllocator slice{static_cast<char*>(region) + i * kStackBytes, kStackBytes};
    const ctx::stack_context stack = slice.allocate();
    fibers.emplace_back(std::allocator_arg, ctx::preallocated(stack.sp, stack.size, stack), slice,
                        [](ctx::fiber&& caller) {
                          for (;;) caller = std::move(caller).resume();
                          return std::move(caller);
                        });
    fibers.back() = std::move(fibers.back()).resume();  // first touch, outside the timing
  }
  std::vector<std::vector<std::uint32_t>> orders(kRounds);
  trellis::Prng prng(kSeed);
  for (auto& order : orders) {
    order.resize(fibers_count);
    for (std::size_t i = 0; i < fibers_count; ++i) order[i] = static_cast<std::uint32_t>(i);
    for (std::size_t i = fibers_count; i > 1; --i) std::swap(order[i - 1], order[prng.below(i)]);
  }
  std::size_t round = 0;
  for (auto _ : state) {
    for (const std::uint32_t i : orders[round]) fibers[i] = std::move(fibers[i]).resume();
    round = (round + 1) % kRounds;
  }
  state.counters["per_resume"] = per(static_cast<double>(fibers_count));
  fibers.clear();  // unwinds each fiber (a forced unwind through its stack)
  ::munmap(region, region_bytes);
}
BENCHMARK(BM_BoostContext_ColdResume)->ArgName("fibers")->Arg(1'000)->Arg(10'000)->Arg(kTasks);

void BM_BoostFiber_Yield(benchmark::State& state) {
  // The thread's main fiber alone.
  for (auto _ : state) boost::this_fiber::yield();
}
BENCHMARK(BM_BoostFiber_Yield);

void BM_BoostFiber_YieldPingPong(benchmark::State& state) {
  // One iteration = a yield of the main fiber and one of its partner (two switches).
  bool done = false;
  boost::fibers::fiber partner([&] {
    while (!done) boost::this_fiber::yield();
  });
  boost::this_fiber::yield();
  for (auto _ : state) boost::this_fiber::yield();
  done = true;
  partner.join();
}
BENCHMARK(BM_BoostFiber_YieldPingPong);

// ---- SpawnJoin -----------------------------------------------------------------------------

void BM_Trellis_SpawnJoin(benchmark::State& state) {
  // One iteration: a whole run whose main task starts 100k empty tasks in one nursery and
  // waits for them at the nursery's exit.
  for (auto _ : state) {
    trellis::run(
        [] {
          trellis::open_nursery([](trellis::Nursery& nursery) {
            for (int i = 0; i < kTasks; ++i) nursery.start_soon([] {});
          });
        },
        {.schedule_seed = kSeed});
  }
  state.counters["per_task"] = per(kTasks);
}
BENCHMARK(BM_Trellis_SpawnJoin)->Unit(benchmark::kMillisecond);

void BM_BoostFiber_SpawnJoin(benchmark::State& state) {
  // One iteration: launch 100k empty fibers (default stack), then join them all.
  for (auto _ : state) {
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) fibers.emplace_back([] {});
    for (boost::fibers::fiber& fiber : fibers) fiber.join();
  }
  state.counters["per_task"] = per(kTasks);
}
BENCHMARK(BM_BoostFiber_SpawnJoin)->Unit(benchmark::kMillisecond);

// ---- Timers --------------------------------------------------------------------------------

// kTasks random durations in [1 us, 1 s], fixed by kSeed.
std::vector<trellis::Duration> random_durations() {
  trellis::Prng prng(kSeed);
  std::vector<trellis::Duration> durations;
  durations.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    durations.push_back(std::chrono::microseconds(1 + prng.below(1'000'000)));
  }
  return durations;
}

void BM_Trellis_Sleepers(benchmark::State& state) {
  // One iteration: a run that starts 100k tasks, each sleeping once for a random duration,
  // under a MockClock that jumps to the next deadline as soon as every task is blocked.
  // Everything (spawn, timer push/pop, autojumps, wake-ups, join) divided by 100k timers.
  // Argument: the tasks' stack size in KiB (0: the default, 256 KiB); smaller stacks pack the
  // 100k live stacks closer together (fewer TLB and page-table misses).
  const std::vector<trellis::Duration> durations = random_durations();
  const std::size_t stack_size = static_cast<std::size_t>(state.range(0)) * 1024;
  for (auto _ : state) {
    trellis::fakes::MockClock clock;
    clock.set_autojump_threshold(trellis::Duration::zero());
    trellis::run(
        [&] {
          trellis::open_nursery([&](trellis::Nursery& nursery) {
            for (const trellis::Duration d : durations) {
              nursery.start_soon([d] { trellis::sleep(d); });
            }
          });
        },
        {.clock = &clock, .schedule_seed = kSeed, .stack_size = stack_size});
  }
  state.counters["per_timer"] = per(kTasks);
}
BENCHMARK(BM_Trellis_Sleepers)
    ->Unit(benchmark::kMillisecond)
    ->ArgName("stack_kib")
    ->Arg(0)
    ->Arg(16);

// One run of `tasks` tasks, each sleeping `sleeps` random durations in [1 us, 1 s] (its own
// seeded sequence) under an autojumping MockClock: up to `tasks` timers pending at once.
void run_sleepers(int tasks, int sleeps) {
  trellis::fakes::MockClock clock;
  clock.set_autojump_threshold(trellis::Duration::zero());
  trellis::run(
      [tasks, sleeps] {
        trellis::open_nursery([tasks, sleeps](trellis::Nursery& nursery) {
          for (int i = 0; i < tasks; ++i) {
            nursery.start_soon([i, sleeps] {
              trellis::Prng prng(kSeed + static_cast<std::uint64_t>(i));
              for (int k = 0; k < sleeps; ++k) {
                trellis::sleep(std::chrono::microseconds(1 + prng.below(1'000'000)));
              }
            });
          }
        });
      },
      {.clock = &clock, .schedule_seed = kSeed});
}

void BM_Trellis_SleepersTenEach(benchmark::State& state) {
  // As above with 10 random sleeps per task (1M timers, 100k pending at any time), so the
  // spawn cost is spread over 10 timers.
  for (auto _ : state) run_sleepers(kTasks, kSleepsPerTask);
  state.counters["per_timer"] = per(static_cast<double>(kTasks) * kSleepsPerTask);
}
BENCHMARK(BM_Trellis_SleepersTenEach)->Unit(benchmark::kMillisecond);

void BM_Trellis_TimerMarginal(benchmark::State& state) {
  // The run loop's cost per timer once its task exists: one iteration times a run of N tasks
  // (the argument; 100k is the target's case) sleeping once each, then one where they sleep
  // 10 times each, and counts only the difference (9N timers, with N pending throughout).
  // Spawning, first-touching N stacks and joining cost the same in both runs and cancel
  // out. The smaller N show the same work with every task's memory warm in the caches.
  const int tasks = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    run_sleepers(tasks, 1);
    const auto middle = std::chrono::steady_clock::now();
    run_sleepers(tasks, kSleepsPerTask);
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(
        std::chrono::duration<double>((end - middle) - (middle - start)).count());
  }
  state.counters["per_timer"] = per(static_cast<double>(tasks) * (kSleepsPerTask - 1));
}
BENCHMARK(BM_Trellis_TimerMarginal)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->ArgName("tasks")
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(kTasks);

void BM_Trellis_DeadlineHeap(benchmark::State& state) {
  // The run loop's timer structure alone, no tasks: N timers pending (the argument); one
  // iteration pops the earliest and registers it again at a random later deadline, as a
  // sleeper waking and sleeping again does. The part of BM_Trellis_TimerMarginal that is
  // the heap's.
  namespace internal = trellis::internal;
  const auto count = static_cast<std::size_t>(state.range(0));
  std::vector<internal::DeadlineTimer> timers(count);
  internal::DeadlineHeap heap;
  trellis::Prng prng(kSeed);
  const auto random_delay = [&] {
    return trellis::Duration(std::chrono::microseconds(1 + prng.below(1'000'000)));
  };
  for (internal::DeadlineTimer& timer : timers) {
    timer.expire = [](void*) {};
    timer.owner = &timer;
    heap.push(timer, trellis::Time(random_delay()));
  }
  for (auto _ : state) {
    const trellis::Time now = heap.top_deadline();
    auto& timer = *static_cast<internal::DeadlineTimer*>(heap.pop_expiry().owner);
    heap.push(timer, now + random_delay());
  }
}
BENCHMARK(BM_Trellis_DeadlineHeap)->ArgName("timers")->Arg(1'000)->Arg(10'000)->Arg(kTasks);

void BM_Asio_SteadyTimers(benchmark::State& state) {
  // One iteration: 100k steady_timers in one io_context, each with a handler, run to
  // completion. Asio has no virtual clock, so the random expiries lie in the past (every timer
  // is due): run() measures the timer queue and handler dispatch, not waiting.
  const std::vector<trellis::Duration> durations = random_durations();
  for (auto _ : state) {
    boost::asio::io_context io;
    std::vector<boost::asio::steady_timer> timers;
    timers.reserve(kTasks);
    const auto now = std::chrono::steady_clock::now();
    long fired = 0;
    for (const trellis::Duration d : durations) {
      timers.emplace_back(io, now - std::chrono::seconds(1) + d);
      timers.back().async_wait([&](const boost::system::error_code&) { ++fired; });
    }
    io.run();
    benchmark::DoNotOptimize(fired);
  }
  state.counters["per_timer"] = per(kTasks);
}
BENCHMARK(BM_Asio_SteadyTimers)->Unit(benchmark::kMillisecond);

// ---- Channel -------------------------------------------------------------------------------

constexpr std::size_t kChannelBuffer = 64;

// Two tasks ping-pong over two 0-capacity channels; one iteration = one round trip (the
// measured task sends i, its partner receives it and sends it back, the measured task
// receives it). Each send hands its value straight to the blocked receiver.
void channel_ping_pong(benchmark::State& state, const trellis::RunOptions& options) {
  trellis::run(
      [&] {
        auto [ping_send, ping_receive] = trellis::open_memory_channel<int>(0);
        auto [pong_send, pong_receive] = trellis::open_memory_channel<int>(0);
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          nursery.start_soon(
              [](trellis::MemoryReceiveChannel<int> in, trellis::MemorySendChannel<int> out) {
                for (int value : in) out.send(value);
              },
              std::move(ping_receive), std::move(pong_send));
          int i = 0;
          for (auto _ : state) {
            ping_send.send(i);
            if (pong_receive.receive() != i) state.SkipWithError("wrong value");
            ++i;
          }
          ping_send.close();  // ends the partner's loop
        });
      },
      options);
}

void BM_Trellis_ChannelPingPong(benchmark::State& state) {
  channel_ping_pong(state, {.schedule_seed = kSeed});
}
BENCHMARK(BM_Trellis_ChannelPingPong);

void BM_Trellis_ChannelPingPongFifo(benchmark::State& state) {
  FifoPolicy fifo;
  channel_ping_pong(state, {.policy = &fifo});
}
BENCHMARK(BM_Trellis_ChannelPingPongFifo);

void BM_BoostFiber_UnbufferedChannelPingPong(benchmark::State& state) {
  // The same round trip over two boost::fibers::unbuffered_channel<int>.
  boost::fibers::unbuffered_channel<int> ping;
  boost::fibers::unbuffered_channel<int> pong;
  boost::fibers::fiber partner([&] {
    for (int value : ping) pong.push(value);
  });
  int i = 0;
  for (auto _ : state) {
    ping.push(i);
    if (pong.value_pop() != i) state.SkipWithError("wrong value");
    ++i;
  }
  ping.close();
  partner.join();
}
BENCHMARK(BM_BoostFiber_UnbufferedChannelPingPong);

void BM_Trellis_BufferedChannelThroughput(benchmark::State& state) {
  // The measured task sends one int per iteration into a 64-slot channel; a consumer task
  // drains it. Blocked sends and receives alternate in bursts as the buffer fills and empties.
  trellis::run(
      [&] {
        auto [send, receive] = trellis::open_memory_channel<int>(kChannelBuffer);
        long sum = 0;
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          nursery.start_soon(
              [&sum](trellis::MemoryReceiveChannel<int> in) {
                for (int value : in) sum += value;
              },
              std::move(receive));
          int i = 0;
          for (auto _ : state) send.send(i++);
          send.close();
        });
        benchmark::DoNotOptimize(sum);
      },
      {.schedule_seed = kSeed});
}
BENCHMARK(BM_Trellis_BufferedChannelThroughput);

void BM_BoostFiber_BufferedChannelThroughput(benchmark::State& state) {
  // The same over boost::fibers::buffered_channel<int> (capacity 64: it holds 63).
  boost::fibers::buffered_channel<int> channel(kChannelBuffer);
  long sum = 0;
  boost::fibers::fiber consumer([&] {
    for (int value : channel) sum += value;
  });
  int i = 0;
  for (auto _ : state) channel.push(i++);
  channel.close();
  consumer.join();
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_BoostFiber_BufferedChannelThroughput);

// ---- Fan-in and a contended lock -----------------------------------------------------------

constexpr int kFanInProducers = 8;
constexpr int kFanInMessages = 1'000'000;

void BM_Trellis_FanIn(benchmark::State& state) {
  // One iteration: 8 producer tasks, each on its own clone of the send channel, send 125k
  // ints each into one 64-slot channel; the main task receives all 1M until EndOfChannel.
  for (auto _ : state) {
    trellis::run(
        [] {
          auto channel = trellis::open_memory_channel<int>(kChannelBuffer);
          trellis::MemorySendChannel<int>& send = channel.first;
          trellis::MemoryReceiveChannel<int>& receive = channel.second;
          long sum = 0;
          trellis::open_nursery([&send, &receive, &sum](trellis::Nursery& nursery) {
            for (int p = 0; p < kFanInProducers; ++p) {
              nursery.start_soon(
                  [](trellis::MemorySendChannel<int> out) {
                    for (int i = 0; i < kFanInMessages / kFanInProducers; ++i) out.send(i);
                  },
                  send.clone());
            }
            send.close();
            for (int value : receive) sum += value;
          });
          benchmark::DoNotOptimize(sum);
        },
        {.schedule_seed = kSeed});
  }
  state.counters["messages_per_second"] =
      benchmark::Counter(kFanInMessages, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Trellis_FanIn)->Unit(benchmark::kMillisecond);

void BM_BoostFiber_FanIn(benchmark::State& state) {
  // The same over boost::fibers::buffered_channel<int>(64), 8 producer fibers.
  for (auto _ : state) {
    boost::fibers::buffered_channel<int> channel(kChannelBuffer);
    std::vector<boost::fibers::fiber> producers;
    for (int p = 0; p < kFanInProducers; ++p) {
      producers.emplace_back([&channel] {
        for (int i = 0; i < kFanInMessages / kFanInProducers; ++i) channel.push(i);
      });
    }
    long sum = 0;
    for (int i = 0; i < kFanInMessages; ++i) sum += channel.value_pop();
    for (auto& producer : producers) producer.join();
    benchmark::DoNotOptimize(sum);
  }
  state.counters["messages_per_second"] =
      benchmark::Counter(kFanInMessages, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BoostFiber_FanIn)->Unit(benchmark::kMillisecond);

constexpr int kLockTasks = 100;
constexpr int kLockRounds = 10'000;

void contended_lock(benchmark::State& state, bool check_lock_order) {
  // One iteration: 100 tasks each take and release one trellis::Lock 10k times (1M
  // acquisitions). acquire() is a schedule point even when the lock is free (as in Trio), so
  // the holder yields while holding it, the others queue, and every release hands the lock
  // to the longest waiter: handoffs_per_second counts acquisitions.
  for (auto _ : state) {
    long counter = 0;
    trellis::run(
        [&counter] {
          trellis::Lock lock;
          trellis::open_nursery([&lock, &counter](trellis::Nursery& nursery) {
            for (int t = 0; t < kLockTasks; ++t) {
              nursery.start_soon([&lock, &counter] {
                for (int k = 0; k < kLockRounds; ++k) {
                  std::lock_guard guard(lock);
                  ++counter;
                }
              });
            }
          });
        },
        {.schedule_seed = kSeed, .check_lock_order = check_lock_order});
    if (counter != static_cast<long>(kLockTasks) * kLockRounds) state.SkipWithError("lost");
  }
  state.counters["handoffs_per_second"] = benchmark::Counter(
      static_cast<double>(kLockTasks) * kLockRounds, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_Trellis_ContendedLock(benchmark::State& state) {
  contended_lock(state, /*check_lock_order=*/false);
}
BENCHMARK(BM_Trellis_ContendedLock)->Unit(benchmark::kMillisecond);

// The same with RunOptions::check_lock_order on (as in tests and the simulator): what the
// lock tracker costs per acquisition.
void BM_Trellis_ContendedLockChecked(benchmark::State& state) {
  contended_lock(state, /*check_lock_order=*/true);
}
BENCHMARK(BM_Trellis_ContendedLockChecked)->Unit(benchmark::kMillisecond);

void BM_BoostFiber_ContendedMutex(benchmark::State& state) {
  // The same with boost::fibers::mutex and 100 fibers; each yields while holding the mutex
  // (Boost.Fiber's lock() is no schedule point), so the others queue as above.
  for (auto _ : state) {
    boost::fibers::mutex mutex;
    long counter = 0;
    std::vector<boost::fibers::fiber> fibers;
    for (int t = 0; t < kLockTasks; ++t) {
      fibers.emplace_back([&mutex, &counter] {
        for (int k = 0; k < kLockRounds; ++k) {
          std::lock_guard guard(mutex);
          boost::this_fiber::yield();
          ++counter;
        }
      });
    }
    for (auto& fiber : fibers) fiber.join();
    if (counter != static_cast<long>(kLockTasks) * kLockRounds) state.SkipWithError("lost");
  }
  state.counters["handoffs_per_second"] = benchmark::Counter(
      static_cast<double>(kLockTasks) * kLockRounds, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BoostFiber_ContendedMutex)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]).starts_with(kChildFlag)) {
    return idle_memory_child(std::string_view(argv[1]).substr(kChildFlag.size()));
  }
  if (argc == 2 &&
      std::string_view(argv[1]).starts_with(trellis_bench::kIdleConnectionsChildFlag)) {
    return trellis_bench::idle_connections_child(
        std::string_view(argv[1]).substr(trellis_bench::kIdleConnectionsChildFlag.size()));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
