// to_thread in the simulator: the "thread" is a task started after a virtual latency from
// the world's seeded stream, so the same seed gives the same trace hash, run after run (the
// determinism rule of DESIGN.md); from_thread calls inside it run directly; abandon and
// no-abandon cancellation behave as on the real backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <thread>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

// Several tasks run to_thread calls that call back with from_thread and touch the disk; the
// trace records the order things finish in.
std::uint64_t threads_workload_hash(std::uint64_t seed, Duration* elapsed = nullptr) {
  World world(Config{.seed = seed});
  Host& host = world.add_host("worker", "10.0.0.1");
  bool done = false;
  host.start([&] {
    to_thread::current_default_thread_limiter().set_total_tokens(3);
    Path("/w").mkdir();
    open_nursery([&](Nursery& n) {
      for (std::uint64_t i = 0; i < 8; ++i) {
        n.start_soon([&, i] {
          const std::uint64_t got = to_thread::run_sync([&, i] {
            const std::uint64_t doubled = from_thread::run_sync([i] { return i * 2; });
            return from_thread::run([&, doubled] {
              (Path("/w") / std::to_string(i)).write_text("x");
              sleep(1ms);
              return doubled + 1;
            });
          });
          world.trace().record("thread done", got);
        });
      }
    });
    done = true;
  });
  const Time start = world.now();
  world.run([&] {
    while (!done) sleep(1ms);
  });
  if (elapsed != nullptr) *elapsed = world.now() - start;
  EXPECT_TRUE(done);
  return world.trace().hash();
}

TEST(SimThreads, SameSeedSameTraceHash) {
  Duration elapsed{};
  const std::uint64_t first = threads_workload_hash(11, &elapsed);
  EXPECT_EQ(threads_workload_hash(11), first);
  EXPECT_EQ(threads_workload_hash(11), first);
  EXPECT_GT(elapsed, Duration::zero());  // the latency is virtual time
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) hashes.insert(threads_workload_hash(seed));
  EXPECT_GT(hashes.size(), 1u);  // the seed changes the schedule
}

TEST(SimThreads, NoRealThreadRunsAndResultsCross) {
  World world(Config{.seed = 3});
  Host& host = world.add_host("h", "10.0.0.1");
  const std::thread::id loop = std::this_thread::get_id();
  bool checked = false;
  host.start([&] {
    EXPECT_EQ(to_thread::run_sync([] { return std::this_thread::get_id(); }), loop);
    EXPECT_THROW(to_thread::run_sync([]() -> int { throw std::runtime_error("x"); }),
                 std::runtime_error);
    EXPECT_EQ(lowlevel::current_threads().statistics().threads, 0u);
    checked = true;
  });
  world.run([&] {
    while (!checked) sleep(1ms);
  });
  EXPECT_TRUE(checked);
}

TEST(SimThreads, CancellationAbandonBothWays) {
  World world(Config{.seed = 5});
  Host& host = world.add_host("h", "10.0.0.1");
  bool abandoned_left = false;
  bool waited_returned = false;
  bool finished = false;
  host.start([&] {
    // abandon_on_cancel: the task leaves at once; the job still runs later.
    CancelScope abandon;
    abandon.run([&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          to_thread::run_sync([&] { from_thread::run([&] { sleep(10ms); }); },
                              {.abandon_on_cancel = true});
        });
        sleep(1us);
        abandon.cancel();
      });
    });
    abandoned_left = abandon.cancelled_caught();
    // No abandon: cancellation waits for the job, whose result is returned.
    CancelScope wait;
    wait.run([&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] {
          finished = to_thread::run_sync([] { return true; });
          waited_returned = true;
        });
        sleep(1us);  // the job is started, its latency (>= 5 us) not yet over
        wait.cancel();
      });
    });
  });
  world.run([&] { sleep(1s); });
  EXPECT_TRUE(abandoned_left);
  EXPECT_TRUE(waited_returned);
  EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace trellis::sim
