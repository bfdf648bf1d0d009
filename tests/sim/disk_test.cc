// The simulated disks through open_file / AsyncFile / Path: POSIX durability exactly (fsync
// for data, directory fsync for names), crashes that keep only durable state, torn writes at
// sector boundaries, injected EIO and ENOSPC, per-host isolation, and clear errors.
#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

// Runs `before` on a host, crashes and restarts it, then runs `after` (the restarted main).
template <class Before, class After>
void across_crash(Config config, Before before, After after) {
  World world(std::move(config));
  Host& host = world.add_host("db", "10.0.0.1");
  int incarnation = 0;
  bool first_done = false;
  host.start([&] {
    if (incarnation++ == 0) {
      before();
      first_done = true;
      sleep_forever();
    }
    after();
  });
  world.run([&] {
    while (!first_done) sleep(1ms);
    host.crash();
    host.restart();
    sleep(1s);
  });
  EXPECT_EQ(incarnation, 2);
}

TEST(SimDisk, FilesAndDirectories) {
  World world(Config{.seed = 1});
  Host& host = world.add_host("db", "10.0.0.1");
  host.start([] {
    Path("/data/logs").mkdir(/*parents=*/true);
    EXPECT_TRUE(Path("/data").is_dir());
    Path("/data/a.txt").write_text("alpha");
    {
      AsyncFile f = open_file("/data/b.txt", "w+");
      f.write("hello world");
      EXPECT_EQ(f.seek(6), 6u);
      EXPECT_EQ(f.read_all(), "world");
      f.pwrite(std::as_bytes(std::span("HELLO", 5)), 0);
      f.seek(0);
      EXPECT_EQ(f.read_all(), "HELLO world");
      EXPECT_EQ(f.stat().size, 11u);
      f.truncate(5);
      EXPECT_EQ(f.stat().size, 5u);
    }
    {
      AsyncFile f = open_file("/data/a.txt", "a");
      f.write("+beta");
    }
    EXPECT_EQ(Path("/data/a.txt").read_text(), "alpha+beta");
    std::vector<std::string> names;
    for (const Path& p : Path("/data").iterdir()) names.push_back(p.name());
    EXPECT_EQ(names, (std::vector<std::string>{"a.txt", "b.txt", "logs"}));
    Path("/data/a.txt").rename("/data/logs/c.txt");
    EXPECT_FALSE(Path("/data/a.txt").exists());
    EXPECT_EQ(Path("/data/logs/c.txt").read_text(), "alpha+beta");
    EXPECT_THROW(Path("/data/logs").rmdir(), OSError);  // not empty
    Path("/data/logs/c.txt").unlink();
    Path("/data/logs").rmdir();
    Path("/data/gone").unlink(/*missing_ok=*/true);
    Path("/data").mkdir(false, /*exist_ok=*/true);
  });
  world.run([] { sleep(1s); });
}

TEST(SimDisk, ClearErrors) {
  World world(Config{.seed = 1});
  Host& host = world.add_host("db", "10.0.0.1");
  host.start([] {
    try {
      open_file("/missing/file", "r");
      ADD_FAILURE();
    } catch (const OSError& e) {
      EXPECT_EQ(e.errno_value(), ENOENT);
      EXPECT_NE(std::string(e.what()).find("open /missing/file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(open_file("/x", "rw"), std::invalid_argument);
    EXPECT_THROW(open_file("/x", "q"), std::invalid_argument);
    AsyncFile f = open_file("/x", "w");
    f.close();
    f.close();  // idempotent
    EXPECT_THROW(f.write("late"), ClosedResourceError);
    EXPECT_THROW(open_file("/x", "x"), OSError);  // exists
    EXPECT_THROW(Path("relative/path").exists(),
                 OSError);  // EINVAL: the simulator wants absolute paths
  });
  world.run([] { sleep(1s); });
  // Outside a host: a usage error, not a silent success.
  World other(Config{.seed = 1});
  EXPECT_THROW(other.run([] { Path("/x").exists(); }), UsageError);
}

TEST(SimDisk, CrashKeepsOnlyWhatWasSynced) {
  across_crash(
      Config{.seed = 2},
      [] {
        Path("/db").mkdir();
        Path("/").fsync_directory();
        AsyncFile f = open_file("/db/wal", "w");
        Path("/db").fsync_directory();  // the name is durable
        f.write("synced;");
        f.fsync();
        f.write("lost;");  // never synced
        AsyncFile g = open_file("/db/unnamed", "w");
        g.write("data");
        g.fsync();  // data durable, but the name never was
      },
      [] {
        EXPECT_EQ(Path("/db/wal").read_text(), "synced;");
        EXPECT_FALSE(Path("/db/unnamed").exists());
      });
}

TEST(SimDisk, RenameIsAtomicAndDurableWithItsDirectory) {
  // write tmp + fsync, rename over the target, crash before the directory fsync: the old
  // target survives whole; after the directory fsync: the new one does.
  for (bool sync_dir : {false, true}) {
    across_crash(
        Config{.seed = 3},
        [&] {
          Path("/config").write_text("old");
          {
            AsyncFile f = open_file("/config", "r");
            f.fsync();
          }
          Path("/").fsync_directory();
          AsyncFile tmp = open_file("/config.tmp", "w");
          tmp.write("new");
          tmp.fsync();
          tmp.close();
          Path("/config.tmp").rename("/config");
          if (sync_dir) Path("/").fsync_directory();
        },
        [&] {
          EXPECT_EQ(Path("/config").read_text(), sync_dir ? "new" : "old");
          EXPECT_FALSE(Path("/config.tmp").exists());
        });
  }
}

TEST(SimDisk, TornWritesCutAtSectorBoundaries) {
  std::set<std::size_t> sizes;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::size_t size = 0;
    across_crash(
        Config{.seed = seed, .disk = {.torn_write_ppm = 1'000'000}},
        [] {
          AsyncFile f = open_file("/f", "w");
          f.fsync();
          Path("/").fsync_directory();
          f.write(std::string(4096, 'a'));  // unsynced: may tear
        },
        [&] {
          const std::string text = Path("/f").read_text();
          size = text.size();
          EXPECT_EQ(text, std::string(size, 'a'));
          EXPECT_EQ(size % 512, 0u) << "seed " << seed;
        });
    sizes.insert(size);
  }
  EXPECT_GT(sizes.size(), 3u);  // cuts vary with the seed
}

TEST(SimDisk, InjectedEioAndEnospc) {
  World world(Config{.seed = 4, .disk = {.eio_ppm = 1'000'000}});
  Host& host = world.add_host("db", "10.0.0.1");
  int eio = 0;
  host.start([&] {
    AsyncFile f = open_file("/f", "w");
    try {
      f.write("x");
    } catch (const OSError& e) {
      eio = e.errno_value();
    }
  });
  world.run([] { sleep(1s); });
  EXPECT_EQ(eio, EIO);

  World full(Config{.seed = 4, .disk = {.capacity_bytes = 1000}});
  Host& h = full.add_host("db", "10.0.0.1");
  int enospc = 0;
  std::uint64_t written = 0;
  h.start([&] {
    AsyncFile f = open_file("/f", "w");
    try {
      f.write(std::string(2000, 'x'));
    } catch (const OSError& e) {
      enospc = e.errno_value();
    }
    written = f.stat().size;
  });
  full.run([] { sleep(1s); });
  EXPECT_EQ(enospc, ENOSPC);
  EXPECT_EQ(written, 1000u);
}

TEST(SimDisk, EachHostHasItsOwnDisk) {
  World world(Config{.seed = 5});
  Host& a = world.add_host("a", "10.0.0.1");
  Host& b = world.add_host("b", "10.0.0.2");
  bool b_sees = true;
  a.start([] { Path("/only-on-a").write_text("a"); });
  b.start([&] {
    sleep(1s);
    b_sees = Path("/only-on-a").exists();
  });
  world.run([] { sleep(2s); });
  EXPECT_FALSE(b_sees);
}

}  // namespace
}  // namespace trellis::sim
