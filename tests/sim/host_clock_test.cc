// Per-host clocks (Host::set_clock, sim/internal/host_clock.h): a host's current_time(),
// sleeps and deadlines follow its own drifting, offset clock; the world's event queue stays
// the one place time advances, and runs stay deterministic.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

Config without_cpu_time(std::uint64_t seed) {
  Config config{.seed = seed};
  config.cpu.step_time_ppm = 0;  // nothing but the clocks moves a wake-up
  return config;
}

struct Wake {
  Time world_start{};
  Time world_woke{};
  Time local_start{};
  Time local_woke{};
};

// Each of the hosts (drift in ppm) sleeps `d` on its own clock; when did it wake, in world time?
std::vector<Wake> sleep_on_drifting_hosts(const std::vector<std::int64_t>& drifts, Duration d,
                                          std::uint64_t* hash = nullptr) {
  World world(without_cpu_time(3));
  std::vector<Wake> wakes(drifts.size());
  for (std::size_t i = 0; i < drifts.size(); ++i) {
    Host& host = world.add_host("h" + std::to_string(i), "10.0.0." + std::to_string(i + 1));
    host.set_clock(drifts[i]);
    host.start([&, i] {
      wakes[i].world_start = world.now();
      wakes[i].local_start = current_time();
      sleep(d);
      wakes[i].world_woke = world.now();
      wakes[i].local_woke = current_time();
    });
  }
  world.run([] { sleep(10s); });
  if (hash != nullptr) *hash = world.trace().hash();
  return wakes;
}

TEST(HostClock, DriftingHostsSleepsEndByTheirOwnClock) {
  const std::vector<Wake> wakes = sleep_on_drifting_hosts({0, 100'000, -100'000, 500}, 1s);
  // The world starts the hosts at its time 0; a clock +X ppm fast ends a 1 s sleep
  // 1 s / (1 + X / 1e6) of world time later (rounded up to the nanosecond).
  const std::int64_t expected_ns[] = {1'000'000'000, 909'090'910, 1'111'111'112, 999'500'250};
  for (std::size_t i = 0; i < wakes.size(); ++i) {
    EXPECT_EQ(wakes[i].world_start, Time{}) << i;
    EXPECT_EQ((wakes[i].world_woke - wakes[i].world_start).count(), expected_ns[i]) << i;
    // On its own clock the host slept exactly what it asked for (to the nanosecond).
    EXPECT_GE(wakes[i].local_woke - wakes[i].local_start, 1s) << i;
    EXPECT_LT(wakes[i].local_woke - wakes[i].local_start, 1s + 2ns) << i;
  }
}

TEST(HostClock, DeadlinesAndOffsetFollowTheHostsClock) {
  World world(without_cpu_time(4));
  Host& fast = world.add_host("fast", "10.0.0.1");
  fast.set_clock(250'000, 1h);  // 25% fast, an hour ahead (its own epoch, as after boot)
  Time local_at_start{};
  Time world_when_moved_on{};
  bool cancelled = false;
  fast.start([&] {
    local_at_start = current_time();
    move_on_after(2s, [&] { sleep_forever(); });
    world_when_moved_on = world.now();
    cancelled = true;
  });
  Time driver_reads{};
  Time host_clock_read_by_driver{};
  world.run([&] {
    sleep(1s);
    driver_reads = current_time();  // the driver is on the world's clock
    host_clock_read_by_driver = fast.clock_now();
    sleep(5s);
  });
  EXPECT_EQ(local_at_start, Time{} + 1h);
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(world_when_moved_on, Time{} + 1600ms);  // 2 s of a clock 1.25 times as fast
  EXPECT_EQ(driver_reads, Time{} + 1s);
  EXPECT_EQ(host_clock_read_by_driver, Time{} + 1h + 1250ms);
  EXPECT_EQ(fast.world_time_of(Time{} + 1h + 2s), Time{} + 1600ms);
}

TEST(HostClock, DeterministicAndTheWorldClockByDefault) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  const std::vector<Wake> first = sleep_on_drifting_hosts({30'000, -70'000}, 250ms, &a);
  const std::vector<Wake> second = sleep_on_drifting_hosts({30'000, -70'000}, 250ms, &b);
  EXPECT_EQ(a, b);
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].world_woke, second[i].world_woke);
  }
  // Drift 0, offset 0 is the world's own clock: the same run as never setting it.
  std::uint64_t zero = 0;
  sleep_on_drifting_hosts({0, 0}, 250ms, &zero);
  World plain(without_cpu_time(3));
  for (int i = 0; i < 2; ++i) {
    Host& host = plain.add_host("h" + std::to_string(i), "10.0.0." + std::to_string(i + 1));
    host.start([&] {
      (void)plain.now();
      (void)current_time();
      sleep(250ms);
      (void)plain.now();
      (void)current_time();
    });
  }
  plain.run([] { sleep(10s); });
  EXPECT_EQ(plain.trace().hash(), zero);
}

TEST(HostClock, ClearErrors) {
  World world(Config{.seed = 5});
  Host& host = world.add_host("h", "10.0.0.1");
  EXPECT_THROW(host.set_clock(500'001), std::invalid_argument);
  EXPECT_THROW(host.set_clock(-500'001), std::invalid_argument);
  EXPECT_THROW(host.set_clock(0, -1s), std::invalid_argument);
  world.run([&] { EXPECT_THROW(host.set_clock(10), UsageError); });
}

}  // namespace
}  // namespace trellis::sim
