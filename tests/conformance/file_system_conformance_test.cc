// One file-system test body run against the real facet (EpollBackend's PosixFileSystem, in a
// fresh temporary directory) and the simulated one (a sim::World host's disk), proving they
// agree: contents, positions, pread/pwrite, truncate, fsync, rename (atomic replace), unlink,
// stat, mkdir/rmdir, sorted iterdir, and the errno of each failure (ENOENT, EEXIST, ENOTDIR,
// ENOTEMPTY, EISDIR).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

// The errno of the OSError that body throws (0 if none, -1 for another exception).
int errno_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const OSError& e) {
    return e.errno_value();
  } catch (...) {
    return -1;
  }
  return 0;
}

std::vector<std::string> names(const std::vector<Path>& paths) {
  std::vector<std::string> out;
  for (const Path& p : paths) out.push_back(p.name());
  return out;
}

// The shared body. `root` is an existing, empty directory.
void file_system_body(const Path& root) {
  // Files: write, read back, positions, pread/pwrite, truncate, fsync.
  const Path a = root / "a.txt";
  EXPECT_FALSE(a.exists());
  a.write_text("alpha");
  EXPECT_TRUE(a.exists());
  EXPECT_TRUE(a.is_file());
  EXPECT_FALSE(a.is_dir());
  EXPECT_EQ(a.read_text(), "alpha");
  EXPECT_EQ(a.stat().size, 5u);
  {
    AsyncFile f = open_file((root / "b.bin").string(), "w+");
    f.write("hello world");
    EXPECT_EQ(f.seek(0, SEEK_CUR), 11u);
    EXPECT_EQ(f.seek(6), 6u);
    EXPECT_EQ(f.read_all(), "world");
    f.pwrite(std::as_bytes(std::span("HELLO", 5)), 0);
    EXPECT_EQ(f.seek(0, SEEK_CUR), 11u);  // pwrite leaves the position alone
    std::vector<std::byte> buffer(5);
    EXPECT_EQ(f.pread(buffer, 6), 5u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), 5), "world");
    EXPECT_EQ(f.pread(buffer, 11), 0u);              // at end of file
    f.pwrite(std::as_bytes(std::span("!", 1)), 13);  // past the end: a hole of zeros
    EXPECT_EQ(f.stat().size, 14u);
    f.fsync();
    f.fdatasync();
    f.truncate(5);
    EXPECT_EQ(f.stat().size, 5u);
    EXPECT_EQ(f.seek(0, SEEK_END), 5u);
    f.close();
    EXPECT_THROW(f.write("x"), ClosedResourceError);
  }
  EXPECT_EQ((root / "b.bin").read_text(), "HELLO");
  {
    AsyncFile f = open_file((root / "b.bin").string(), "a");
    f.write(" again");
  }
  EXPECT_EQ((root / "b.bin").read_text(), "HELLO again");

  // Directories: mkdir, iterdir (sorted), rename, unlink, rmdir, fsync_directory.
  const Path dir = root / "d";
  dir.mkdir();
  EXPECT_TRUE(dir.is_dir());
  (dir / "z").write_text("z");
  (dir / "m").write_text("m");
  (root / "deep" / "er").mkdir(/*parents=*/true);
  EXPECT_EQ(names(dir.iterdir()), (std::vector<std::string>{"m", "z"}));
  EXPECT_EQ(names(root.iterdir()), (std::vector<std::string>{"a.txt", "b.bin", "d", "deep"}));
  (dir / "m").rename(dir / "z");  // atomic replace
  EXPECT_EQ(names(dir.iterdir()), std::vector<std::string>{"z"});
  EXPECT_EQ((dir / "z").read_text(), "m");
  dir.fsync_directory();
  (dir / "z").unlink();
  (dir / "z").unlink(/*missing_ok=*/true);
  dir.rmdir();
  EXPECT_FALSE(dir.exists());

  // Errors, errno-exact.
  EXPECT_EQ(errno_of([&] { (root / "missing").read_text(); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "missing").stat(); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "missing").unlink(); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "missing").rename(root / "other"); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "missing").iterdir(); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "no" / "such").mkdir(); }), ENOENT);
  EXPECT_EQ(errno_of([&] { (root / "deep").mkdir(); }), EEXIST);
  EXPECT_EQ(errno_of([&] { (root / "deep").mkdir(false, /*exist_ok=*/true); }), 0);
  EXPECT_EQ(errno_of([&] { open_file(a.string(), "x"); }), EEXIST);
  EXPECT_EQ(errno_of([&] { (a / "child").write_text("x"); }), ENOTDIR);
  EXPECT_EQ(errno_of([&] { (a / "child").mkdir(); }), ENOTDIR);
  EXPECT_EQ(errno_of([&] { a.iterdir(); }), ENOTDIR);
  EXPECT_EQ(errno_of([&] { (root / "deep").rmdir(); }), ENOTEMPTY);
  EXPECT_EQ(errno_of([&] { (root / "deep").unlink(); }), EISDIR);
  EXPECT_EQ(errno_of([&] { (root / "deep").read_text(); }), EISDIR);

  // Leave the root empty again.
  (root / "deep" / "er").rmdir();
  (root / "deep").rmdir();
  a.unlink();
  (root / "b.bin").unlink();
  EXPECT_TRUE(root.iterdir().empty());
}

TEST(FileSystemConformance, Posix) {
  char dir_template[] = "/tmp/trellis_fs_conformance_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string root = dir_template;
  run([&] { file_system_body(Path(root)); });
  EXPECT_EQ(::rmdir(root.c_str()), 0);
}

TEST(FileSystemConformance, Sim) {
  sim::World world(sim::Config{.seed = 7});
  sim::Host& host = world.add_host("disk", "10.0.0.1");
  bool done = false;
  host.start([&] {
    Path("/conformance").mkdir();
    file_system_body(Path("/conformance"));
    done = true;
  });
  world.run([&] {
    while (!done) sleep(std::chrono::milliseconds(1));
  });
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace trellis
