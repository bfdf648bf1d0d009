// The simulated disks beyond crashes (disk_config.h): fsync promises exactly what was written
// before the call, and the storage corruption faults (flipped bits on read, misdirected and
// lost writes, latent sector errors) — each deterministic per seed, each off at 0.
#include <gtest/gtest.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string pattern(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + i % 23);
  return out;
}

// Runs body() as a host's main; returns what it returned and the run's trace hash.
template <class Body>
std::pair<std::string, std::uint64_t> on_host(Config config, Body body) {
  World world(std::move(config));
  Host& host = world.add_host("db", "10.0.0.1");
  std::string result;
  host.start([&] { result = body(); });
  world.run([] { sleep(1s); });
  return {result, world.trace().hash()};
}

// A task fsyncs while another writes the same file during the fsync's latency; then the host
// crashes. Returns what survived, and whether the later write returned before the fsync did.
std::pair<std::string, bool> fsync_racing_a_write(std::uint64_t seed) {
  World world(Config{.seed = seed, .disk = {.latency_min = 1us, .latency_max = 1ms}});
  Host& host = world.add_host("db", "10.0.0.1");
  int incarnation = 0;
  bool first_done = false;
  bool landed_during = false;
  std::string survived;
  host.start([&] {
    if (incarnation++ > 0) {
      survived = Path("/f").read_text();
      return;
    }
    AsyncFile f = open_file("/f", "w");
    f.fsync();
    Path("/").fsync_directory();
    f.write("early;");
    bool syncing = false;
    bool synced = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        syncing = true;
        f.fsync();
        synced = true;
      });
      n.start_soon([&] {
        while (!syncing) sleep(1us);
        AsyncFile g = open_file("/f", "r+");
        g.pwrite(bytes_of("late;"), 6);
        landed_during = !synced;
      });
    });
    first_done = true;
    sleep_forever();
  });
  world.run([&] {
    while (!first_done) sleep(1ms);
    host.crash();
    host.restart();
    sleep(1s);
  });
  EXPECT_EQ(incarnation, 2);
  return {survived, landed_during};
}

TEST(SimDiskFaults, FsyncPromisesOnlyWritesBeforeTheCall) {
  int during = 0;
  int late_kept = 0;
  int late_lost = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    const auto [survived, landed_during] = fsync_racing_a_write(seed);
    // The write before the call is always durable.
    ASSERT_TRUE(survived.starts_with("early;")) << "seed " << seed << ": " << survived;
    if (!landed_during) {
      // Written after the fsync returned, never synced: lost in the crash.
      EXPECT_EQ(survived, "early;") << "seed " << seed;
      continue;
    }
    ++during;
    if (survived == "early;late;") {
      ++late_kept;
    } else {
      EXPECT_EQ(survived, "early;") << "seed " << seed;
      ++late_lost;
    }
  }
  EXPECT_GE(during, 10);
  // A write that started while the fsync ran may or may not be durable: both happen.
  EXPECT_GT(late_kept, 0);
  EXPECT_GT(late_lost, 0);
  // Deterministic per seed.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_EQ(fsync_racing_a_write(seed), fsync_racing_a_write(seed));
  }
}

TEST(SimDiskFaults, ReadCorruptionFlipsOneBitOnTheWayOnly) {
  const std::string written = pattern(128);
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const Config config{.seed = seed, .disk = {.read_corruption_ppm = 1'000'000}};
    auto body = [&] {
      Path("/f").write_text(written);
      AsyncFile f = open_file("/f", "r");
      std::string read(written.size(), '\0');
      EXPECT_EQ(f.pread(std::as_writable_bytes(std::span(read)), 0), written.size());
      return read;
    };
    const auto first = on_host(config, body);
    int bits = 0;
    for (std::size_t i = 0; i < written.size(); ++i) {
      bits += std::popcount(static_cast<unsigned char>(first.first[i] ^ written[i]));
    }
    EXPECT_EQ(bits, 1) << "seed " << seed;
    EXPECT_EQ(on_host(config, body), first);  // same seed, same bit
    seen.insert(first.first);
  }
  EXPECT_GT(seen.size(), 3u);

  // The disk's copy is intact: with the knob off, the same bytes read back clean.
  World world(Config{.seed = 1, .disk = {.read_corruption_ppm = 1'000'000}});
  Host& host = world.add_host("db", "10.0.0.1");
  host.start([&] { Path("/f").write_text(written); });
  world.run([] { sleep(1s); });
  const internal::Disk& disk = world.disk(host);
  const auto& data = disk.inodes.at(disk.names.at("/f")).data;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()), data.size()), written);
}

TEST(SimDiskFaults, MisdirectedWriteLandsAtAnotherSector) {
  const std::string written = pattern(2048);
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const Config config{.seed = seed, .disk = {.misdirected_write_ppm = 1'000'000}};
    auto body = [&] {
      AsyncFile f = open_file("/f", "w+");
      f.pwrite(bytes_of(written), 0);
      EXPECT_EQ(f.stat().size, written.size());  // the size is as asked
      f.seek(0);
      return f.read_all();
    };
    const auto first = on_host(config, body);
    const std::string& got = first.first;
    ASSERT_EQ(got.size(), written.size());
    // Zeros where it was meant to go, then the write's head at a sector boundary.
    const std::size_t landed = got.find_first_not_of('\0');
    ASSERT_NE(landed, std::string::npos) << "seed " << seed;
    EXPECT_GT(landed, 0u);
    EXPECT_EQ(landed % 512, 0u);
    EXPECT_EQ(got.substr(landed), written.substr(0, written.size() - landed));
    EXPECT_EQ(on_host(config, body), first);
  }
}

TEST(SimDiskFaults, LostWriteIsAcknowledgedAndChangesNothing) {
  const Config config{.seed = 7, .disk = {.lost_write_ppm = 1'000'000}};
  auto body = [] {
    AsyncFile f = open_file("/f", "w+");
    f.write("hello");  // no error
    EXPECT_EQ(f.stat().size, 0u);
    f.fsync();
    return f.read_all();
  };
  const auto first = on_host(config, body);
  EXPECT_EQ(first.first, "");
  EXPECT_EQ(on_host(config, body), first);
}

TEST(SimDiskFaults, LatentSectorErrorFailsReadsUntilRewritten) {
  const std::string written = pattern(2048);
  std::set<std::string> bad_by_seed;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const Config config{.seed = seed, .disk = {.latent_sector_error_ppm = 1'000'000}};
    auto body = [&] {
      AsyncFile f = open_file("/f", "w+");
      f.pwrite(bytes_of(written), 0);  // the write succeeds; one of its 4 sectors goes bad
      std::string errors;
      for (std::uint64_t sector = 0; sector < 4; ++sector) {
        std::string buffer(512, '\0');
        try {
          f.pread(std::as_writable_bytes(std::span(buffer)), sector * 512);
          EXPECT_EQ(buffer, written.substr(sector * 512, 512));
          errors += '.';
        } catch (const OSError& e) {
          EXPECT_EQ(e.errno_value(), EIO);
          errors += 'E';
        }
      }
      return errors;
    };
    const auto first = on_host(config, body);
    EXPECT_EQ(std::count(first.first.begin(), first.first.end(), 'E'), 1) << first.first;
    EXPECT_EQ(on_host(config, body), first);
    bad_by_seed.insert(first.first);
  }
  EXPECT_GT(bad_by_seed.size(), 1u);

  // A bad sector (planted here, the knob off) fails reads across a crash until rewritten.
  World world(Config{.seed = 1});
  Host& host = world.add_host("db", "10.0.0.1");
  int incarnation = 0;
  bool planted = false;
  std::string errors;
  host.start([&] {
    if (incarnation++ == 0) {
      AsyncFile f = open_file("/f", "w");
      f.write(written);
      f.fsync();
      Path("/").fsync_directory();
      sleep_forever();
    }
    while (!planted) sleep(1ms);
    AsyncFile f = open_file("/f", "r+");
    std::string buffer(100, '\0');
    auto read_at = [&](std::uint64_t offset) {
      try {
        f.pread(std::as_writable_bytes(std::span(buffer)), offset);
        errors += '.';
      } catch (const OSError& e) {
        errors += e.errno_value() == EIO ? 'E' : '?';
      }
    };
    read_at(1000);                          // sector 1
    read_at(0);                             // sector 0 is fine
    f.pwrite(bytes_of("rewritten"), 1000);  // covers part of sector 1
    read_at(1000);
  });
  world.run([&] {
    sleep(100ms);
    host.crash();
    internal::Disk& disk = world.disk(host);
    disk.inodes.at(disk.names.at("/f")).bad_sectors.insert(1);
    host.restart();
    planted = true;
    sleep(1s);
  });
  EXPECT_EQ(errors, "E..");
}

}  // namespace
}  // namespace trellis::sim
